#!/usr/bin/env bash
# Make sure a Docker engine answers: install Debian's docker.io and start dockerd when needed.
set -euo pipefail
if docker info >/dev/null 2>&1; then exit 0; fi
if ! command -v dockerd >/dev/null 2>&1; then
    echo "forgebot: installing Debian's docker.io" >&2
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >/dev/null
fi
echo "forgebot: starting dockerd (log: /var/log/forgebot-dockerd.log)" >&2
nohup dockerd >/var/log/forgebot-dockerd.log 2>&1 &
for _ in $(seq 1 60); do
    if docker info >/dev/null 2>&1; then exit 0; fi
    sleep 1
done
echo "forgebot: dockerd did not start; see /var/log/forgebot-dockerd.log" >&2
exit 1

#!/usr/bin/env bash
# The demo: a local forge made from examples/hello-service, a labelled issue, the bot at work,
# and what it produced. Safe to run twice: it starts from a clean var/demo each time.
set -euo pipefail
cd "$(dirname "$0")/.."

export FORGEBOT_CONFIG=${FORGEBOT_CONFIG:-examples/demo/forgebot.yml}
# The webhook secret lives only in this process's environment (and the server's).
export FORGEBOT_FORGES__LOCAL__SECRET=${FORGEBOT_FORGES__LOCAL__SECRET:-$(.venv/bin/python -c 'import secrets; print(secrets.token_hex(32))')}
FB=.venv/bin/forgebot
REPO=demo/hello-service
DATA=var/demo
PIDFILE=var/demo-serve.pid
LOG=var/demo-serve.log

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    kill "$(cat "$PIDFILE")" && sleep 1   # an earlier demo still running
fi
rm -rf "$DATA"
mkdir -p var

say "forgebot doctor"
$FB doctor || true

say "A local forge with $REPO (from examples/hello-service)"
$FB local init examples/hello-service --repo "$REPO"

say "Starting forgebot serve (log: $LOG)"
$FB serve >"$LOG" 2>&1 &
echo $! >"$PIDFILE"
trap 'kill "$(cat "$PIDFILE")" 2>/dev/null || true; rm -f "$PIDFILE"' EXIT
PORT=$(.venv/bin/python -c 'from bot.config import load_settings; print(load_settings().web.port)')
for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
    kill -0 "$(cat "$PIDFILE")" 2>/dev/null || { cat "$LOG"; echo "forgebot serve exited" >&2; exit 1; }
    sleep 0.2
done

say "Filing a labelled issue"
$FB local issue --repo "$REPO" --label forgebot \
    --title "Add a farewell function" \
    --body "Add a function farewell(name) to hello_service/app.py that returns 'Goodbye, <name>!' (and 'Goodbye, world!' for an empty name), with a test in tests/test_farewell.py."

say "Waiting for the bot to finish (the embedded model runs on the CPU)"
$FB wait --timeout 1800

say "The job"
$FB jobs
JOB=$($FB jobs --json | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
$FB jobs "$JOB"

say "The issue and the bot's comments"
$FB local show-issue --repo "$REPO" 1

say "Pull requests"
$FB local pulls --repo "$REPO"
PULL=$($FB local pulls --repo "$REPO" --json | .venv/bin/python -c 'import json,sys; p=json.load(sys.stdin); print(p[0]["number"] if p else "")')
if [ -n "$PULL" ]; then
    say "Pull request #$PULL and its diff"
    $FB local show-pull --repo "$REPO" "$PULL"
else
    OUTCOME=$($FB jobs --json | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)[0]["outcome"])')
    say "No pull request: the job ended with outcome '$OUTCOME'"
    cat <<TXT
The bot's comment on issue #1 above says why. With the tiny embedded model (SmolLM2-135M)
this is the common case: it rarely writes edits in the format the bot asks for, and the bot
never pushes what it cannot apply, test and check. Point the demo at a real model server:

  FORGEBOT_LLM__PROVIDER=openai FORGEBOT_LLM__BASE_URL=http://HOST:PORT/v1 \\
  FORGEBOT_LLM__MODEL=NAME make demo
TXT
fi

#!/usr/bin/env bash
# Debian's headless Chromium and its ChromeDriver, for the dashboard's browser tests.
#
#   bash scripts/ensure-chromium.sh
#
# Installs the packages chromium and chromium-driver when either binary is missing (root
# only), and checks that both answer. Safe to run twice: nothing happens when both are
# there. No browser is ever downloaded from anywhere but Debian's archive. Messages go to
# stderr; on success stdout gets the two paths, browser then driver.
set -euo pipefail

BROWSER=/usr/bin/chromium
DRIVER=/usr/bin/chromedriver

say() { echo "ensure-chromium: $*" >&2; }
die() { say "$*"; exit 1; }

if [[ ! -x $BROWSER || ! -x $DRIVER ]]; then
    [[ $(id -u) -eq 0 ]] || die "chromium or chromedriver is missing and only root can apt-get them"
    say "installing Debian's chromium and chromium-driver"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q chromium chromium-driver >&2 \
        || { apt-get update -q >&2 && apt-get install -y -q chromium chromium-driver >&2; }
fi

"$BROWSER" --version >&2 || die "$BROWSER does not run"
"$DRIVER" --version >&2 || die "$DRIVER does not run"
echo "$BROWSER"
echo "$DRIVER"

#!/usr/bin/env bash
# Browser tests: Galata drives Debian's Chromium (no browser download) against a test JupyterLab.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
. .venv/bin/activate
export CHROMIUM_PATH=${CHROMIUM_PATH:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM_PATH" ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "Chromium not found at $CHROMIUM_PATH: install Debian's chromium package (sudo apt-get install chromium)" >&2
    exit 1
  fi
fi
# The Chinese tests switch JupyterLab to Chinese as a user does: with its language pack. A CJK font
# keeps their screenshots readable (the assertions read the DOM and pass without one).
python -m pip install -q jupyterlab-language-pack-zh-CN
if [ "$(id -u)" = 0 ] && command -v fc-list >/dev/null && [ -z "$(fc-list :lang=zh)" ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-zenhei >/dev/null
fi
cd ui-tests
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 jlpm install --immutable
CI=1 PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 jlpm playwright test

#!/usr/bin/env bash
# Set up a development environment from scratch: Debian's Chromium (browser tests and
# re-capture; playwright cannot download its own browser here), Node.js with the pinned
# BackstopJS in fixtures/tools (the re-capture tests run the real BackstopJS), and a
# virtualenv with reviewer and its dev tools.
# Idempotent: rerunning skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

BACKSTOP_VERSION=6.3.25   # fixtures/tools/package-lock.json pins it (and puppeteer 22.15.0)

if [ "$(id -u)" = 0 ]; then apt_get="apt-get"; else apt_get="sudo apt-get"; fi
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium fonts-dejavu-core)
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ "${#missing[@]}" -gt 0 ]; then
  $apt_get update -q
  DEBIAN_FRONTEND=noninteractive $apt_get install -y -q --no-install-recommends "${missing[@]}"
fi

# BackstopJS drives Debian's Chromium too: neither puppeteer nor playwright may download a browser.
backstop=fixtures/tools/node_modules/.bin/backstop
if ! { [ -x "$backstop" ] && "$backstop" --version 2>/dev/null | grep -q "v$BACKSTOP_VERSION"; }; then
  (cd fixtures/tools && PUPPETEER_SKIP_DOWNLOAD=1 PUPPETEER_SKIP_CHROMIUM_DOWNLOAD=1 PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
    npm ci --no-audit --no-fund --loglevel=error)
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 .venv/bin/python -m pip install -q -e '.[dev]'

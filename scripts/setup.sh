#!/usr/bin/env bash
# Set up a development environment from scratch: Debian's Chromium (browser tests and
# re-capture; playwright cannot download its own browser here), a virtualenv with reviewer
# and its dev tools, and the npm reference tools the benchmark compares against.
# Idempotent: rerunning skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then apt_get="apt-get"; else apt_get="sudo apt-get"; fi
  $apt_get update -q
  DEBIAN_FRONTEND=noninteractive $apt_get install -y -q --no-install-recommends chromium fonts-dejavu-core
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 .venv/bin/python -m pip install -q -e '.[dev]'

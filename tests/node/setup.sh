#!/usr/bin/env bash
# Installs what the real-client tests need: the pinned npm packages (package-lock.json) and Debian's chromium.
# Run by the test suite (tests/ManagedLM.Tests/Server/ClientTools.cs) once per run; safe to run by hand.
# Prints one line when it installs something (nothing when all is there), on the terminal if there is one: the test
# suite captures this script's output.
set -euo pipefail
cd "$(dirname "$0")"
installing=""
npm_needed=false
if [ ! -f node_modules/.package-lock.json ] || ! cmp -s package-lock.json .installed-lock.json; then
  npm_needed=true
  installing="the npm packages of tests/node (openai, puppeteer-core)"
fi
chromium_needed=false
if ! command -v chromium >/dev/null 2>&1; then
  chromium_needed=true
  installing="${installing:+$installing and }Debian's chromium with the system packages it needs (apt-get)"
fi
if [ -n "$installing" ]; then
  line="tests/node/setup.sh: installing $installing for the real-client tests"
  { echo "$line" >/dev/tty; } 2>/dev/null || echo "$line" >&2
fi
if $npm_needed; then
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json .installed-lock.json
fi
if $chromium_needed; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo -n"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -q chromium >/dev/null || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q chromium >/dev/null; }
fi
command -v chromium

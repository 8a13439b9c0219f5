#!/usr/bin/env bash
# Installs what the real-client tests need: the pinned npm packages (package-lock.json) and Debian's chromium.
# Run by the test suite (tests/ManagedLM.Tests/Server/ClientTools.cs) once per run; safe to run by hand.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -f node_modules/.package-lock.json ] || ! cmp -s package-lock.json .installed-lock.json; then
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json .installed-lock.json
fi
if ! command -v chromium >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo -n"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -q chromium >/dev/null || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q chromium >/dev/null; }
fi
command -v chromium

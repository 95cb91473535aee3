#!/usr/bin/env bash
# Set up and run the whole test suite (unit tests on a tiny model, integration tests on the real
# model and a real BentoML server). Installs promtool (Debian package prometheus) if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! command -v promtool >/dev/null 2>&1; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq prometheus >/dev/null
fi
exec .venv/bin/python -m pytest "$@"

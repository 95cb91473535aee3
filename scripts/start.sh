#!/usr/bin/env bash
# Set up, initialise the state folder (version 1 from the packaged base model) and serve on
# 127.0.0.1:3000 with the monitoring daemon beside it. EMBEDLOOP_HOME chooses the state folder (default ./.embedloop).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/embedloop init
exec .venv/bin/embedloop up "$@"

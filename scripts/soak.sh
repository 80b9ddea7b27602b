#!/usr/bin/env bash
# Soak test: scripts/soak.sh DURATION [options]  (see scripts/soak.py --help)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
exec "$PY" scripts/soak.py "$@"

#!/usr/bin/env bash
# The project's checks: install, lint, type-check (the core strictly), unit and
# integration tests (the latter need root; under CI=true they fail rather
# than skip).  pytest's "no tests ran" (exit 5) is a failure too.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
.venv/bin/ruff check vlan_nats tests scripts csrc
.venv/bin/mypy vlan_nats
.venv/bin/python -m pytest tests "$@"

#!/usr/bin/env bash
# The project's checks: install, lint (ruff, and the size limits of
# scripts/check_sizes.py), type-check (the core strictly), unit and
# integration tests (the latter need root; under CI=true they fail rather
# than skip).  pytest's "no tests ran" (exit 5) is a failure too.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
# What only the tests need: systemd-analyze (unit files), vagrant (validate),
# arping (routed ARP: probes and announcements), dnsmasq (DHCP over the LAN),
# Node.js and npm (the official JavaScript client, tests/js), promtool (the
# Prometheus project's check of our metrics; Debian's prometheus package).
need=()
command -v promtool >/dev/null || need+=(prometheus)
# clang with libFuzzer and the sanitizers (scripts/fuzz_c.py, the sanitizer build).
command -v clang >/dev/null || need+=(clang)
[ -n "$(ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a 2>/dev/null)" ] \
  || need+=(libclang-rt-14-dev)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v vagrant >/dev/null || need+=(vagrant)
command -v arping >/dev/null || need+=(iputils-arping)
command -v dnsmasq >/dev/null || need+=(dnsmasq-base)
if [ ${#need[@]} -gt 0 ] && [ "$(id -u)" = 0 ]; then
  echo "test.sh: installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The JavaScript client the services test runs (tests/js/package-lock.json).
npm ci --prefix tests/js --no-audit --no-fund --loglevel=error >/dev/null
.venv/bin/ruff check vlan_nats tests scripts csrc
.venv/bin/python scripts/check_sizes.py
.venv/bin/mypy vlan_nats
.venv/bin/python -m pytest tests "$@"

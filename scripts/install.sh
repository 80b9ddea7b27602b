#!/usr/bin/env bash
# Install vlan-nats and everything it needs into ./.venv (run as root on
# Debian/Ubuntu): Debian packages for the lab tools and the C build, then
# the package itself (editable, which compiles the cffi fast path).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
need=()
command -v ip >/dev/null || need+=(iproute2)
command -v ping >/dev/null || need+=(iputils-ping)
command -v iperf3 >/dev/null || need+=(iperf3)
command -v cc >/dev/null || need+=(gcc libc6-dev)
# The C datapath (csrc/vn_datapath.c) builds when libnats' header is there;
# without it vlan-nats still installs and runs on the python datapath.
if [ -z "${VLAN_NATS_NO_LIBNATS:-}" ]; then
  [ -e /usr/include/nats/nats.h ] || need+=(libnats-dev)
  [ -e /usr/include/openssl/evp.h ] || need+=(libssl-dev)
fi
if ! "$PY" -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
  need+=(python3-dev)
fi
if ! "$PY" -c 'import ensurepip, venv' 2>/dev/null; then
  need+=(python3-venv)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "install.sh: installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
echo "install.sh: installed; run: .venv/bin/vlan-nats --help"

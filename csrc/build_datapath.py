"""cffi build script (API mode) for ``vlan_nats._datapath``, the C datapath.

It needs libnats (Debian: libnats-dev) and OpenSSL's libcrypto (libssl-dev);
setup.py builds it only when ``available()`` says both headers are there,
so a machine without them still installs, on the python datapath.
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

ffibuilder = FFI()
ffibuilder.cdef((HERE / "vn_datapath.h").read_text())
ffibuilder.set_source(
    "vlan_nats._datapath",
    '#include "vn_datapath.h"',
    sources=[
        f"csrc/{name}.c"
        for name in (
            "vn_datapath", "vn_conn", "vn_loop", "vn_tx", "vn_rx", "vn_mactab", "vn_seal", "vn_arp"
        )
    ],
    include_dirs=["csrc"],
    libraries=["nats", "crypto", "pthread"],
    extra_compile_args=["-O2", "-Wall", "-Wextra"],
)


def available() -> bool:
    """Can this machine compile and link against libnats and libcrypto?"""
    if os.environ.get("VLAN_NATS_NO_LIBNATS"):
        return False
    cc = shutil.which(os.environ.get("CC", "cc"))
    if cc is None:
        return False
    src = (
        "#include <nats/nats.h>\n#include <openssl/evp.h>\nint main(void){return nats_Open(-1);}\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        c = Path(tmp, "probe.c")
        c.write_text(src)
        r = subprocess.run(
            [cc, str(c), "-o", str(Path(tmp, "probe")), "-lnats", "-lcrypto"],
            capture_output=True,
        )
    return r.returncode == 0


if __name__ == "__main__":
    os.chdir(ROOT)
    ffibuilder.compile(tmpdir=".", verbose=True)

"""The core imports no asyncio, NATS, pyroute2, cffi or socket module."""

import subprocess
import sys

FORBIDDEN = ("asyncio", "nats", "pyroute2", "cffi", "socket", "uvloop", "_fastpath")
CORE = [
    "control",
    "counters",
    "forwarding",
    "frames",
    "mac",
    "seal",
    "subjects",
    "switching",
    "vnet",
    "wire",
]


def test_core_imports_no_io_modules():
    code = (
        "import sys\n"
        + "".join(f"import vlan_nats.core.{m}\n" for m in CORE)
        + "print('\\n'.join(sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(out.stdout.split())
    bad = sorted(m for m in loaded if m.split(".")[0] in FORBIDDEN or m.endswith("._fastpath"))
    assert bad == []

"""The core imports no I/O: no asyncio, NATS, pyroute2, cffi (nor its
backend, which ``cryptography`` loads), ctypes, socket, and no other part
of the package.  Every module under vlan_nats/core/ is checked, found by
walking the package, so a new one is covered without editing this test.

Sealing needs AES-GCM: the core takes it as a parameter (core/seal.py's
``aead``), and vlan_nats/crypto.py is the one place that imports
``cryptography``.
"""

import pkgutil
import subprocess
import sys

import pytest

import vlan_nats.core

FORBIDDEN = (
    "asyncio",
    "nats",
    "pyroute2",
    "cffi",
    "_cffi_backend",
    "cryptography",
    "ctypes",
    "socket",
    "uvloop",
)
CORE = sorted(m.name for m in pkgutil.iter_modules(vlan_nats.core.__path__))


def loaded_by(modules: list[str]) -> set[str]:
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules)
    code += "print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def impure(loaded: set[str]) -> list[str]:
    bad = [m for m in loaded if m.split(".")[0] in FORBIDDEN or m in FORBIDDEN]
    # Of the package itself only the core (and the package's lazy __init__).
    bad += [m for m in loaded if m.startswith("vlan_nats.") and not m.startswith("vlan_nats.core")]
    return sorted(bad)


def test_the_walk_finds_the_core():
    assert {"wire", "seal", "forwarding", "subjects", "counters"} <= set(CORE)


@pytest.mark.parametrize("name", CORE)
def test_core_module_imports_no_io(name):
    assert impure(loaded_by([f"vlan_nats.core.{name}"])) == []


def test_the_check_can_fail():
    """An I/O module is caught, also one loaded indirectly, and so is
    another part of the package."""
    assert "asyncio" in impure(loaded_by(["asyncio"]))
    assert "_cffi_backend" in impure(loaded_by(["cryptography.hazmat.primitives.ciphers.aead"]))
    assert "vlan_nats.config" in impure(loaded_by(["vlan_nats.config"]))

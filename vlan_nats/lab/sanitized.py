"""The C datapath under AddressSanitizer and UndefinedBehaviorSanitizer, for
the tests (tests/integration/test_sanitized.py, docs/reliability.md).

``build()`` compiles ``vlan_nats._datapath`` with the sanitizers (gcc, -O1
-g) into build/sanitized/ -- never installed.  A daemon runs on it when
its environment has ``VLAN_NATS_DATAPATH_LIB`` (cdatapath.py loads that
file instead of the installed module) and the sanitizer's runtime first in
the process (``LD_PRELOAD``: Python itself is not instrumented).
``launcher()`` is the ``env`` prefix the lab puts before such a daemon;
every report goes to a file under ``reports`` and ends the daemon.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def build(out: Path | None = None) -> Path:
    """The sanitized extension's path (built now)."""
    out = out or ROOT / "build" / "sanitized"
    out.mkdir(parents=True, exist_ok=True)
    code = (
        "import os, sys; sys.path.insert(0, 'csrc'); import build_datapath as b; "
        f"print(b.builder(sanitize=True).compile(tmpdir={str(out)!r}))"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"sanitized build failed:\n{r.stdout[-2000:]}{r.stderr[-3000:]}")
    return Path(r.stdout.strip().splitlines()[-1])


def runtime() -> str:
    """The AddressSanitizer runtime of the compiler that built it."""
    cc = os.environ.get("CC", "cc")
    name = subprocess.run([cc, "-print-file-name=libasan.so"], capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip
    return os.path.realpath(name)


def launcher(lib: Path, reports: Path) -> list[str]:
    """``env ...``: a daemon on the sanitized datapath; a report is a file
    ``reports/asan.<pid>`` or ``reports/ubsan.<pid>`` and ends it.  Leaks
    are not looked for (Python frees little at exit)."""
    reports.mkdir(parents=True, exist_ok=True)
    return [
        "env",
        f"LD_PRELOAD={runtime()}",
        f"VLAN_NATS_DATAPATH_LIB={lib}",
        f"ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:log_path={reports}/asan",
        f"UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path={reports}/ubsan",
    ]

"""A short run of scripts/fuzz_c.py: every libFuzzer target of the C
datapath (csrc/fuzz/) under ASan and UBSan, a few seconds each, after the
kept findings.  Needs clang (scripts/test.sh installs it).

Longer runs: .venv/bin/python scripts/fuzz_c.py --seconds 600
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parents[2] / "scripts" / "fuzz_c.py"


def test_c_fuzz_targets_short_run():
    if shutil.which("clang") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("clang is not installed (scripts/test.sh installs it)")
        pytest.skip("clang not installed")
    r = subprocess.run([sys.executable, str(FUZZ), "--seconds", "5"], capture_output=True,
                       text=True, timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    assert r.stdout.count(" ok ") == 4, r.stdout

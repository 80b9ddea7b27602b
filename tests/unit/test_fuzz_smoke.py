"""A short smoke run of scripts/fuzz.py (atheris): every target, a few seconds.

Longer runs: .venv/bin/python scripts/fuzz.py --seconds 600
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parents[2] / "scripts" / "fuzz.py"


def test_fuzz_targets_smoke(tmp_path):
    try:
        import atheris  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("atheris is not installed (the 'test' extra installs it)")
        pytest.skip("atheris not installed")
    r = subprocess.run(
        [sys.executable, str(FUZZ), "--seconds", "4"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,  # where libFuzzer would write a crash-* input
    )
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    assert r.stdout.count(" ok ") == 4, r.stdout

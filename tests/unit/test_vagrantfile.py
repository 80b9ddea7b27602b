"""The Vagrantfile is valid (vagrant validate) and uses scripts/provision.sh."""

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def validate(d: Path, vagrant: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, VAGRANT_HOME=str(d / ".vagrant.d"), VAGRANT_CHECKPOINT_DISABLE="1")
    return subprocess.run(
        [vagrant, "validate", "--ignore-provider"],
        cwd=d,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def copy_project(tmp_path: Path) -> Path:
    d = tmp_path / "proj"
    (d / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "Vagrantfile", d / "Vagrantfile")
    shutil.copy(ROOT / "scripts" / "provision.sh", d / "scripts" / "provision.sh")
    return d


def test_vagrant_validate(tmp_path, command):
    d = copy_project(tmp_path)
    r = validate(d, command("vagrant", "scripts/test.sh"))
    assert r.returncode == 0 and "validated successfully" in r.stdout, r.stdout + r.stderr
    token = d / ".vagrant" / "vlan-nats.token"
    assert len(token.read_text()) == 64 and (token.stat().st_mode & 0o077) == 0


def test_vagrant_validate_can_fail(tmp_path, command):
    """A broken set-up is caught: the check above can fail."""
    d = copy_project(tmp_path)
    (d / "scripts" / "provision.sh").unlink()  # the provisioner's script is missing
    r = validate(d, command("vagrant", "scripts/test.sh"))
    assert r.returncode != 0 and "provision.sh" in r.stdout + r.stderr


def test_provisioned_by_the_shared_script():
    text = (ROOT / "Vagrantfile").read_text()
    assert 'path: "scripts/provision.sh"' in text
    assert "scripts/provision.sh" in (ROOT / "scripts" / "vmlab.py").read_text()

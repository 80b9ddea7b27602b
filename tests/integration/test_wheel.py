"""The manylinux wheel (scripts/build-wheel.sh): installed with pip into a
fresh virtual environment, it runs a two-node LAN on the C datapath with
the system's libnats hidden (a file of nothing bound over it in the nodes'
mount namespace), and the libnats the daemon maps is the wheel's own.
Needs root (namespaces, mounts)."""

import glob
import os
import re
import subprocess
import sys
from pathlib import Path

from vlan_nats.lab.checks import ping, wait_ping
from vlan_nats.lab.hosts import Lab

ROOT = Path(__file__).resolve().parents[2]


def system_libnats() -> list[str]:
    """The system's libnats files (symlinks resolved)."""
    found = {os.path.realpath(p) for p in glob.glob("/usr/lib/*/libnats.so*")}
    found |= {os.path.realpath(p) for p in glob.glob("/usr/lib/libnats.so*")}
    return sorted(found)


def test_the_wheel_carries_libnats_and_runs_a_lan(tmp_path):
    r = subprocess.run([str(ROOT / "scripts" / "build-wheel.sh"), str(tmp_path / "dist")],
                       capture_output=True, text=True, timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    (wheel,) = glob.glob(str(tmp_path / "dist" / "vlan_nats-*-manylinux_*.whl"))
    print(f"wheel: {Path(wheel).name} {os.path.getsize(wheel)} bytes")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    r = subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        wheel], capture_output=True, text=True, timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    site = subprocess.run(
        [python, "-c", "import vlan_nats, os; print(os.path.dirname(vlan_nats.__file__))"],
        capture_output=True, text=True, check=True, cwd="/",
    ).stdout.strip()  # fmt: skip
    assert site.startswith(str(venv)), site
    (ext,) = glob.glob(f"{site}/_datapath*.so")
    ldd = subprocess.run(["ldd", ext], capture_output=True, text=True, check=True).stdout
    print(ldd)
    libs = f"{os.path.dirname(site)}/vlan_nats.libs/"
    found = dict(re.findall(r"^\s*(\S+) => (\S+)", ldd, re.M))
    (nats_lib,) = [os.path.realpath(p) for name, p in found.items() if name.startswith("libnats")]
    assert nats_lib.startswith(libs), ldd

    hidden = system_libnats()
    assert hidden, "no system libnats to hide"
    mounts = " && ".join(f"mount --bind /dev/null {p}" for p in hidden)
    launcher = ["unshare", "--mount", "sh", "-c", f'{mounts} && exec "$@"', "sh",
                "env", "-C", "/"]  # fmt: skip
    with Lab(2, tag="vnw", start_nodes=False) as lab:
        for node in lab.nodes:
            node.python, node.launcher = python, launcher
            node.args += ["--dataplane", "c"]
            node.start()
        h1, h2 = lab.nodes
        assert all("datapath=c" in " ".join(n.lines) for n in lab.nodes), h1.lines
        assert wait_ping(h1.ns, h2.ip).received
        assert ping(h1.ns, h2.ip, count=5, interval=0.1).ok
        maps = Path(f"/proc/{h1.proc.pid}/maps").read_text()
        paths = {line.split()[-1] for line in maps.splitlines() if "/" in line}
        mapped = {p for p in paths if os.path.basename(p).startswith("libnats")}
        assert mapped and all(p.startswith(libs) for p in mapped), mapped
        # and the hiding works: the system's copy cannot be loaded there
        r = subprocess.run([*launcher, python, "-c",
                            f"import ctypes; ctypes.CDLL({hidden[0]!r})"],
                           capture_output=True, text=True)  # fmt: skip
        assert r.returncode != 0 and "too short" in r.stderr, r.stderr

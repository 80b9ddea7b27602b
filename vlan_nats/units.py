"""``vlan-nats install-systemd``: the unit files shipped in vlan_nats/data,
with ExecStart pointing at this installation's ``vlan-nats``."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

from .errors import ConfigError

UNITS = ("vlan-nats@.service", "vlan-nats-hub.service")
CONFIG_DIR = Path("/etc/vlan-nats")


def executable() -> str:
    """How systemd should start this installation's vlan-nats."""
    argv0 = Path(sys.argv[0])
    if argv0.name == "vlan-nats" and argv0.exists():
        return str(argv0.resolve().parent / "vlan-nats")  # keep the venv's bin/, not its target
    beside = Path(sys.executable).parent / "vlan-nats"
    if beside.exists():
        return str(beside)
    return f"{sys.executable} -m vlan_nats"


def render(name: str, exe: str | None = None) -> str:
    text = resources.files("vlan_nats").joinpath("data", name).read_text()
    return text.replace("@VLAN_NATS@", exe or executable())


def install(directory: str, reload: bool = True, config_dir: Path = CONFIG_DIR) -> list[Path]:
    """Write the units; create the config directory.  ConfigError on failure."""
    written = []
    try:
        config_dir.mkdir(mode=0o750, parents=True, exist_ok=True)
        for name in UNITS:
            path = Path(directory) / name
            path.write_text(render(name))
            os.chmod(path, 0o644)
            written.append(path)
    except OSError as e:
        raise ConfigError(f"cannot install the units: {e.strerror}: {e.filename}") from None
    if reload and Path("/run/systemd/system").is_dir():
        subprocess.run(["systemctl", "daemon-reload"], check=False)
    return written

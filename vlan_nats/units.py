"""``vlan-nats install-systemd``: the unit files shipped in vlan_nats/data,
with ExecStart pointing at this installation's ``vlan-nats``.

The units are hardened with ``ProtectHome=yes`` and ``PrivateTmp=yes``.
An installation that lives under /home, /root or /run/user (a clone's
./.venv, a pyenv interpreter) or under /tmp would be hidden from its own
service, which then fails with status 203/EXEC and no hint.  So the
rendered unit loosens exactly the protection that would hide it
(``ProtectHome=read-only``, ``PrivateTmp=no``) and says why in a comment;
install-systemd prints a note recommending /opt/vlan-nats.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import ConfigError

UNITS = ("vlan-nats@.service", "vlan-nats-hub.service")
CONFIG_DIR = Path("/etc/vlan-nats")
UNIT_DIR = "/etc/systemd/system"
RECOMMENDED_PREFIX = "/opt/vlan-nats"
# What ProtectHome=yes and PrivateTmp=yes hide (systemd.exec(5)).
HOME_DIRS = ("/home", "/root", "/run/user")
TMP_DIRS = ("/tmp", "/var/tmp")


def executable() -> str:
    """How systemd should start this installation's vlan-nats."""
    argv0 = Path(sys.argv[0])
    if argv0.name == "vlan-nats" and argv0.exists():
        return str(argv0.resolve().parent / "vlan-nats")  # keep the venv's bin/, not its target
    beside = Path(sys.executable).parent / "vlan-nats"
    if beside.exists():
        return str(beside)
    return f"{sys.executable} -m vlan_nats"


def _interpreter(script: Path) -> Path | None:
    """The ``#!`` interpreter of a script, if it has one."""
    try:
        with open(script, "rb") as f:
            first = f.readline(4096)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    parts = first[2:].decode(errors="replace").split()
    return Path(parts[0]) if parts else None


def installation_paths(exe: str | None = None) -> list[Path]:
    """Every file or directory the service must reach to start ``exe``:
    the script, the interpreter it names (and what that links to), the
    prefixes of this Python, and the package itself (an editable install
    lives in its checkout)."""
    exe = exe or executable()
    first = Path(exe.split()[0])
    found = [first, first.resolve()]
    interp = _interpreter(first)
    if interp is not None:
        found += [interp, interp.resolve()]
    if exe == executable():  # this very installation: its Python and package
        found += [
            Path(sys.prefix),
            Path(sys.base_prefix),
            Path(sys.executable).resolve(),
            Path(__file__).resolve().parent,
        ]
    return sorted(set(found))


def _under(path: Path, dirs: tuple[str, ...]) -> str | None:
    for d in dirs:
        if path == Path(d) or Path(d) in path.parents:
            return d
    return None


@dataclass(frozen=True, slots=True)
class Loosened:
    """Protections relaxed for one installation, and why."""

    protect_home: str | None = None  # the path under a home directory
    private_tmp: str | None = None  # the path under /tmp

    def notes(self) -> list[str]:
        out = []
        if self.protect_home:
            out.append(
                f"this installation is under a home directory ({self.protect_home}): "
                "the units use ProtectHome=read-only instead of yes"
            )
        if self.private_tmp:
            out.append(
                f"this installation is under a temporary directory ({self.private_tmp}): "
                "the units use PrivateTmp=no, and a reboot may remove it"
            )
        if out:
            out.append(
                f"for production, install under {RECOMMENDED_PREFIX} "
                "(README: 'Running it as a service')"
            )
        return out


def loosened_for(paths: list[Path]) -> Loosened:
    home = next((str(p) for p in paths if _under(p, HOME_DIRS)), None)
    tmp = next((str(p) for p in paths if _under(p, TMP_DIRS)), None)
    return Loosened(protect_home=home, private_tmp=tmp)


def render(name: str, exe: str | None = None, paths: list[Path] | None = None) -> str:
    """The unit ``name`` for ``exe`` (default: this installation)."""
    exe = exe or executable()
    how = loosened_for(paths if paths is not None else installation_paths(exe))
    text = resources.files("vlan_nats").joinpath("data", name).read_text()
    text = text.replace("@VLAN_NATS@", exe)
    if how.protect_home:
        text = text.replace(
            "ProtectHome=yes\n",
            f"# read-only, not yes: the installation is under a home directory\n"
            f"# ({how.protect_home}); yes would hide it (status 203/EXEC).\n"
            "ProtectHome=read-only\n",
        )
    if how.private_tmp:
        text = text.replace(
            "PrivateTmp=yes\n",
            f"# no, not yes: the installation is under a temporary directory\n"
            f"# ({how.private_tmp}); yes would hide it (status 203/EXEC).\n"
            "PrivateTmp=no\n",
        )
    return text


def install(
    directory: str = UNIT_DIR, reload: bool = True, config_dir: Path | None = None
) -> list[Path]:
    """Write the units; ConfigError on failure.  The config directory
    (/etc/vlan-nats unless ``config_dir``) is created only after the units
    were written to the system's unit directory: ``--dir`` elsewhere (a
    test, a staging tree) leaves /etc alone."""
    if config_dir is None and Path(directory) == Path(UNIT_DIR):
        config_dir = CONFIG_DIR
    texts = {name: render(name) for name in UNITS}
    written = []
    try:
        Path(directory).mkdir(mode=0o755, parents=True, exist_ok=True)
        for name, text in texts.items():
            path = Path(directory) / name
            path.write_text(text)
            os.chmod(path, 0o644)
            written.append(path)
        if config_dir is not None:
            config_dir.mkdir(mode=0o750, parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot install the units: {e.strerror}: {e.filename}") from None
    if reload and Path("/run/systemd/system").is_dir():
        subprocess.run(["systemctl", "daemon-reload"], check=False)
    return written

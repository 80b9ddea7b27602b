"""The local status socket: ``/run/vlan-nats/[<netns>.]<dev>.sock``.

The daemon answers every connection with one JSON document and closes it;
``vlan-nats status`` reads it.  Local and root-only (mode 0600): it works
when NATS is down, which is when one needs it most.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import socket
from collections.abc import Callable
from pathlib import Path

from ..core.status import Status

RUN_DIR = Path("/run/vlan-nats")


def socket_path(dev: str, netns: str | None = None, run_dir: Path = RUN_DIR) -> Path:
    """Two daemons may each have a ``vnats0`` in their own namespace (moved
    there with --netns, or run there with ``ip netns exec``): the namespace
    the device lives in is part of the name, so the names never collide."""
    return run_dir / (f"{netns}.{dev}.sock" if netns else f"{dev}.sock")


def sockets_for(dev: str | None, run_dir: Path = RUN_DIR) -> list[Path]:
    """Status sockets of all daemons, or of those whose device is ``dev``."""
    found = sorted(run_dir.glob("*.sock"))
    if dev is None:
        return found
    return [p for p in found if p.name == f"{dev}.sock" or p.name.endswith(f".{dev}.sock")]


def _in_use(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(str(path))
        except OSError:
            return False
    return True


class InUse(OSError):
    """Another live daemon answers on this path."""


def remove_own(path: Path, identity: tuple[int, int] | None) -> None:
    """Remove the socket at ``path`` if it is still the one we made
    (``identity``: its st_dev and st_ino); another daemon's never is."""
    try:
        st = path.stat()
        if identity is not None and (st.st_dev, st.st_ino) == identity:
            path.unlink()
    except OSError:
        pass


def identity_of(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


async def serve(path: Path, status: Callable[[], dict[str, object]]) -> asyncio.Server:
    """Serve ``path``; InUse if a live daemon answers there (never taken
    over); a file left by a killed daemon is replaced."""
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    if path.exists():
        if _in_use(path):
            raise InUse(errno.EADDRINUSE, f"another daemon answers on {path}")
        path.unlink()  # left over by a daemon that was killed

    async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            writer.write(json.dumps(status(), sort_keys=True).encode() + b"\n")
            await writer.drain()
        writer.close()

    old = os.umask(0o077)
    try:
        return await asyncio.start_unix_server(_answer, path=str(path))
    finally:
        os.umask(old)


def read(path: Path, timeout: float = 3.0) -> dict[str, object]:
    """The status document of the daemon at ``path`` (OSError if none)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return json.loads(b"".join(chunks))  # type: ignore[no-any-return]


def read_all(dev: str | None = None, run_dir: Path = RUN_DIR) -> list[Status]:
    """The status of this host's daemons (of ``dev``'s), in a stable order
    (netns, dev).  ControlError when there are sockets we may not read."""
    from ..errors import ControlError

    out = []
    refused = 0
    for path in sockets_for(dev, run_dir):
        try:
            out.append(Status.from_json(read(path)))
        except PermissionError:
            refused += 1
        except OSError:
            continue  # left over by a daemon that was killed
    if refused and not out:
        raise ControlError(
            f"the status sockets in {run_dir} are readable by root only "
            f"({refused} found): run with sudo"
        )
    return sorted(out, key=lambda st: st.key)

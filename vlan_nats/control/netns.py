"""Network namespaces by name (``ip netns`` style, /run/netns/NAME).

Sockets and files opened while a thread is inside a namespace stay bound
to it after the thread returns; that is how the daemon talks netlink to,
and reads the multicast list of, a TAP it moved elsewhere while NATS stays
reachable from the caller's namespace.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from .. import fastpath
from ..errors import NetnsError

NETNS_DIR = "/run/netns"
T = TypeVar("T")


def path_of(name: str) -> str:
    return os.path.join(NETNS_DIR, name)


def current() -> str:
    """How the namespace this process runs in is named, for deriving a MAC:
    "" for the host's own (init's) namespace; its ``ip netns`` name when it
    has one (``ip netns exec NAME vlan-nats up``); else ``inode:N``."""
    try:
        here = os.stat("/proc/self/ns/net")
    except OSError:
        return ""
    try:
        init = os.stat("/proc/1/ns/net")
    except OSError:  # /proc/1 hidden (another PID namespace): compare by name only
        init = None
    if init is not None and (init.st_dev, init.st_ino) == (here.st_dev, here.st_ino):
        return ""
    try:
        names = sorted(os.listdir(NETNS_DIR))
    except OSError:
        names = []
    for name in names:
        try:
            st = os.stat(path_of(name))
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (here.st_dev, here.st_ino):
            return name
    return f"inode:{here.st_ino}"


def open_fd(name: str) -> int:
    """An fd of namespace ``name``.  Raises NetnsError when it is missing."""
    try:
        return os.open(path_of(name), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NetnsError(
            errno.ENOENT, f"network namespace {name!r} does not exist (ip netns add {name})"
        ) from None
    except OSError as e:
        raise NetnsError(e.errno, f"network namespace {name!r}: {e.strerror}") from None


@contextmanager
def entered(name: str | None) -> Iterator[None]:
    """Run the body with this thread inside namespace ``name`` (None: stay).

    The body must not await: other coroutines would run in the namespace."""
    if name is None:
        yield
        return
    target = open_fd(name)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        fastpath.setns(target)
        try:
            yield
        finally:
            fastpath.setns(home)
    finally:
        os.close(target)
        os.close(home)


def call_in(name: str | None, fn: Callable[[], T]) -> T:
    with entered(name):
        return fn()

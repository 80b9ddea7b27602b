"""Dropping root after set-up, keeping CAP_NET_ADMIN (``up --run-as USER``).

The order matters: PR_SET_KEEPCAPS so that setuid keeps the permitted set,
then groups, gid, uid (glibc applies these to every thread), then capset
to reduce this thread's sets to CAP_NET_ADMIN alone, then no_new_privs.
Capabilities are per thread: other threads (the netlink thread) end with
none, which is all they need.
"""

from __future__ import annotations

import ctypes
import grp
import os
import pwd
import resource
from dataclasses import dataclass

from .errors import ConfigError, PrivilegeError

PR_SET_KEEPCAPS = 8
PR_SET_NO_NEW_PRIVS = 38
CAP_NET_ADMIN = 12
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_SYS_CAPSET = {"x86_64": 126, "aarch64": 91, "armv7l": 185, "riscv64": 91}


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


@dataclass(frozen=True, slots=True)
class RunAs:
    name: str
    uid: int
    gid: int


def lookup(name: str) -> RunAs:
    """The user to become (ConfigError if there is none)."""
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        raise ConfigError(f"bad --run-as {name!r}: no such user") from None
    if pw.pw_uid == 0:
        raise ConfigError(f"bad --run-as {name!r}: that is root; nothing would be dropped")
    return RunAs(name, pw.pw_uid, pw.pw_gid)


def drop(to: RunAs, keep_nice: int = 0) -> None:
    """Become ``to`` with CAP_NET_ADMIN only, still allowed to set a nice
    value down to ``keep_nice`` (a datapath thread started anew takes
    --datapath-nice).  PrivilegeError on failure."""
    libc = ctypes.CDLL(None, use_errno=True)
    if keep_nice < 0:
        _allow_nice(keep_nice)

    def check(rc: int, what: str) -> None:
        if rc != 0:
            err = ctypes.get_errno()
            raise PrivilegeError(f"dropping privileges: {what}: {os.strerror(err)}")

    check(libc.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0), "prctl(PR_SET_KEEPCAPS)")
    try:
        os.setgroups([to.gid])
        os.setresgid(to.gid, to.gid, to.gid)
        os.setresuid(to.uid, to.uid, to.uid)
    except OSError as e:
        raise PrivilegeError(f"dropping privileges to {to.name}: {e.strerror}") from None
    nr = _SYS_CAPSET.get(os.uname().machine)
    if nr is None:
        raise PrivilegeError(f"--run-as: capset syscall number unknown on {os.uname().machine}")
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    data[0].effective = data[0].permitted = 1 << CAP_NET_ADMIN
    check(libc.syscall(nr, ctypes.byref(hdr), data), "capset(CAP_NET_ADMIN)")
    check(libc.prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0), "prctl(PR_SET_KEEPCAPS, 0)")
    check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")


def _allow_nice(nice: int) -> None:
    """RLIMIT_NICE lets an unprivileged process set nice values down to
    20 - its soft limit.  Where it cannot be raised (no CAP_SYS_RESOURCE),
    a datapath thread started anew says so (aio/priority.py)."""
    need = 20 - nice
    soft, hard = resource.getrlimit(resource.RLIMIT_NICE)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return
    top = hard if hard == resource.RLIM_INFINITY or hard >= need else need
    for limits in ((need, top), (min(need, hard), hard)):
        try:
            resource.setrlimit(resource.RLIMIT_NICE, limits)
            return
        except (OSError, ValueError):
            continue


def describe(to: RunAs) -> str:
    try:
        group = grp.getgrgid(to.gid).gr_name
    except KeyError:
        group = str(to.gid)
    return f"{to.name}:{group} caps=cap_net_admin"

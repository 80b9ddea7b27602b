"""Sealing keys on disk: ``vlan-nats genkey`` writes them, ``up`` reads them.

A key file holds 32 random bytes, either raw (what ``genkey`` writes) or as
one line of base64 (easier to paste into configuration management).
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
from dataclasses import dataclass

from .core.seal import KEY_LEN, key_id
from .errors import ConfigError


@dataclass(frozen=True, slots=True)
class SealKeys:
    """The key that seals, and an optional second key also accepted (rollover)."""

    key_file: str
    accept_file: str | None = None

    def load(self) -> tuple[bytes, bytes | None, list[str]]:
        """(sealing key, accepted key, files readable by others).  ConfigError.

        The accepted key's file may be missing: between rollovers there is
        none, and SIGHUP picks it up once it is written."""
        loose: list[str] = []
        key = load_key(self.key_file, "--key-file", loose)
        extra = None
        if self.accept_file and os.path.lexists(self.accept_file):
            extra = load_key(self.accept_file, "--accept-key-file", loose)
        return key, extra, loose


def load_key(path: str, what: str = "key file", loose: list[str] | None = None) -> bytes:
    try:
        st = os.stat(path)
        with open(path, "rb") as f:
            data = f.read(4096)
    except OSError as e:
        raise ConfigError(f"cannot read {what} {path}: {e.strerror}") from None
    if len(data) != KEY_LEN:
        try:
            data = base64.b64decode(data.strip(), validate=True)
        except (binascii.Error, ValueError):
            data = b""
        if len(data) != KEY_LEN:
            raise ConfigError(
                f"bad {what} {path}: expected {KEY_LEN} bytes, raw or base64 "
                "(make one with: vlan-nats genkey FILE)"
            )
    if loose is not None and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        loose.append(path)
    return data


def describe(key: bytes) -> str:
    """How logs name a key: its id byte, never the key."""
    return f"{key_id(key):02x}"


def new_key() -> bytes:
    return os.urandom(KEY_LEN)


def write_new_key(path: str, force: bool = False) -> bytes:
    """Write 32 random bytes to ``path`` with mode 0600.  ConfigError."""
    key = new_key()
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path} exists; not overwriting a key (use --force)") from None
    except OSError as e:
        raise ConfigError(f"cannot write {path}: {e.strerror}") from None
    try:
        os.fchmod(fd, 0o600)  # also when --force replaced a looser file
        os.write(fd, key)
    finally:
        os.close(fd)
    return key

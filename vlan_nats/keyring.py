"""The sealing keys a daemon uses: loaded at start, re-read on SIGHUP.

Loading hands the datapath (either one) the sealing key, whether it starts
a new sender session (whenever the sealing key changes), and the keys it
accepts: the sealing key and the ``--accept-key-file`` key.  A reload that
fails keeps the keys in use.
"""

from __future__ import annotations

import logging
from typing import Protocol

from .errors import ConfigError
from .keys import SealKeys, describe

log = logging.getLogger(__name__)


class Sealing(Protocol):
    """What a datapath offers for sealing."""

    def set_keys(self, key: bytes, new_session: bool, accept: list[bytes]) -> None: ...

    def sealing_sessions(self) -> int: ...


class KeyRing:
    def __init__(self, seal: SealKeys | None) -> None:
        self.seal = seal
        self.key = b""
        self.accepting: list[str] = []

    def load(self, tunnel: Sealing) -> None:
        """Read the key files and seal/open with them (ConfigError)."""
        if self.seal is None:
            return
        key, extra, loose = self.seal.load()
        for path in loose:
            log.warning("secret readable by others path=%s (chmod 600 it)", path)
        keys = [key] if extra is None else [key, extra]
        tunnel.set_keys(key, self.key != key, keys)
        self.key = key
        self.accepting = [describe(k) for k in keys]
        log.info("sealing key=%s accepting=%s", describe(key), ",".join(self.accepting))

    def reload(self, tunnel: Sealing | None) -> None:
        """SIGHUP: re-read the key files; on error keep the keys in use."""
        if self.seal is None or tunnel is None:
            log.info("SIGHUP: nothing to reload (no --key-file)")
            return
        try:
            self.load(tunnel)
        except ConfigError as e:
            log.error("key reload failed, keeping the keys in use: %s", e)

    def status(self, tunnel: Sealing | None) -> dict[str, object] | None:
        if not self.key:
            return None
        return {
            "key": describe(self.key),
            "accepting": self.accepting,
            "sessions": tunnel.sealing_sessions() if tunnel is not None else 0,
        }

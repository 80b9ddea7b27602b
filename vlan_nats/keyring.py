"""The sealing keys a daemon uses: loaded at start, re-read on SIGHUP.

Loading installs a Sealer (a new sender session whenever the sealing key
changes) and an Opener accepting the sealing key and the ``--accept-key-file``
key into the tunnel.  A reload that fails keeps the keys in use.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING

from .core.seal import SESSION_LEN, Opener, Sealer
from .crypto import aes_gcm
from .errors import ConfigError
from .keys import SealKeys, describe

if TYPE_CHECKING:
    from .aio.tunnel import Tunnel

log = logging.getLogger(__name__)


class KeyRing:
    def __init__(self, seal: SealKeys | None) -> None:
        self.seal = seal
        self.key = b""
        self.accepting: list[str] = []

    def load(self, tunnel: Tunnel) -> None:
        """Read the key files and seal/open with them (ConfigError)."""
        if self.seal is None:
            return
        key, extra, loose = self.seal.load()
        for path in loose:
            log.warning("secret readable by others path=%s (chmod 600 it)", path)
        if tunnel.sealer is None or self.key != key:
            # a new session
            tunnel.sealer = Sealer(key, os.urandom(SESSION_LEN), time.time, aead=aes_gcm)
        self.key = key
        keys = [key] if extra is None else [key, extra]
        self.accepting = [describe(k) for k in keys]
        if tunnel.opener is None:
            tunnel.opener = Opener(keys, aead=aes_gcm)
        else:
            tunnel.opener.set_keys(keys)
        log.info("sealing key=%s accepting=%s", describe(key), ",".join(self.accepting))

    def reload(self, tunnel: Tunnel | None) -> None:
        """SIGHUP: re-read the key files; on error keep the keys in use."""
        if self.seal is None or tunnel is None:
            log.info("SIGHUP: nothing to reload (no --key-file)")
            return
        try:
            self.load(tunnel)
        except ConfigError as e:
            log.error("key reload failed, keeping the keys in use: %s", e)

    def status(self, tunnel: Tunnel | None) -> dict[str, object] | None:
        if not self.key:
            return None
        opener = tunnel.opener if tunnel is not None else None
        return {
            "key": describe(self.key),
            "accepting": self.accepting,
            "sessions": opener.sessions if opener else 0,
        }

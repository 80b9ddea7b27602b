"""SIGHUP reads the config file again (``up --config``).

core/settings.py says what changed and what of it applies live; the
daemon's ``apply`` hands each live change to the part that applies it.
What cannot change live is named in one WARNING and kept in
``restart_needed`` (status, metrics) until the daemon is restarted, or the
file says again what the daemon runs.  A file that no longer validates is
one ERROR line, and the running settings stay.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from .config import Config, settings_of
from .core.settings import Change, diff
from .errors import VlanNatsError

log = logging.getLogger(__name__)

# The config file read again, and whether its --mac names a MAC.
Read = Callable[[], tuple[Config, bool]]


class ConfigReload:
    def __init__(
        self,
        cfg: Config,
        read: Read | None,
        explicit_mac: bool,
        apply: Callable[[Change, Config], None],
    ) -> None:
        self.cfg = cfg  # what the daemon runs
        self.read = read  # None: no --config file, flags only
        self.explicit_mac = explicit_mac
        self.apply = apply
        self.restart_needed: list[str] = []

    def __call__(self) -> Config:
        """Read the file again; the settings the daemon runs now."""
        if self.read is None:
            log.info("SIGHUP: no --config file to read again")
            return self.cfg
        try:
            new, explicit_mac = self.read()
        except VlanNatsError as e:
            log.error("config reload failed, keeping the running settings: %s", e)
            return self.cfg
        live, restart = diff(
            settings_of(self.cfg, self.explicit_mac), settings_of(new, explicit_mac)
        )
        for change in live:
            self.apply(change, new)
            log.info("config reload: %s applied", change)
        self.cfg = dataclasses.replace(self.cfg, **{c.name: getattr(new, c.name) for c in live})
        self.restart_needed = [str(c) for c in restart]
        if restart:
            log.warning(
                "config reload: %s: needs a restart (the running daemon keeps the old value)",
                "; ".join(self.restart_needed),
            )
        elif not live:
            log.info("config reload: no change")
        return self.cfg

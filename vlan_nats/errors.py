"""The exceptions of vlan-nats, one small tree::

    VlanNatsError
     +-- ConfigError     (ValueError)       bad option, file or value
     +-- PrivilegeError  (PermissionError)  not root / no CAP_NET_ADMIN
     +-- TapError        (OSError)          /dev/net/tun and the TAP fd
     +-- LinkError       (OSError)          netlink link configuration
     +-- NetnsError      (OSError)          network namespaces
     +-- ControlError                       NATS control plane: unreachable, no answer
     +-- LabError                           demo and lab orchestration

A user mistake surfaces as one of these; the CLI (cli/) prints its message on one
line and exits non-zero.  Per-frame problems are counted, never raised.
"""

from __future__ import annotations


class VlanNatsError(Exception):
    """Root of all vlan-nats errors."""


class ConfigError(VlanNatsError, ValueError):
    """A configuration value is wrong; the message names it, and ``option``
    (an options.Option name, e.g. "mac_ageing") says which one, where known:
    check-config turns it into the line of the file."""

    def __init__(self, message: str, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


class PrivilegeError(VlanNatsError, PermissionError):
    """The daemon lacks the privileges it needs."""


class TapError(VlanNatsError, OSError):
    """Opening or using the TAP device failed."""


class LinkError(VlanNatsError, OSError):
    """Configuring the link over netlink failed."""


class NetnsError(VlanNatsError, OSError):
    """A network namespace is missing or cannot be entered."""


class ControlError(VlanNatsError):
    """A control-plane command (peers, ping, status) could not be answered."""


class LabError(VlanNatsError):
    """The demo or lab could not build or check its topology."""

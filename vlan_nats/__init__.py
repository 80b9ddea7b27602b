"""vlan-nats: a layer-2 virtual LAN carried over NATS."""

from __future__ import annotations

__version__ = "0.1.0"

from .config import Config
from .errors import (
    ConfigError,
    ControlError,
    LabError,
    LinkError,
    NetnsError,
    PrivilegeError,
    TapError,
    VlanNatsError,
)

__all__ = [
    "__version__",
    "Config",
    "ConfigError",
    "ControlError",
    "LabError",
    "LinkError",
    "NetnsError",
    "PrivilegeError",
    "TapError",
    "VlanNatsError",
]

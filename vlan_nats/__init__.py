"""vlan-nats: a layer-2 virtual LAN carried over NATS.

The package namespace is lazy (PEP 562): ``import vlan_nats.core.wire``
loads the core and nothing else of the package; the names below are
imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

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

_WHERE = {
    "Config": "config",
    "ConfigError": "errors",
    "ControlError": "errors",
    "LabError": "errors",
    "LinkError": "errors",
    "NetnsError": "errors",
    "PrivilegeError": "errors",
    "TapError": "errors",
    "VlanNatsError": "errors",
}

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'vlan_nats' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value

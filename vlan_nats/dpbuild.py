"""Which build of the C datapath's extension cdatapath.py imports: the
installed ``vlan_nats._datapath``, or the file ``VLAN_NATS_DATAPATH_LIB``
names (another build of the same module: the sanitized one of the tests,
lab/sanitized.py, docs/reliability.md)."""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any


def extension() -> Any:
    """The module (ImportError when it is not built)."""
    path = os.environ.get("VLAN_NATS_DATAPATH_LIB")
    if not path:
        from . import _datapath

        return _datapath
    spec = importlib.util.spec_from_file_location("vlan_nats._datapath", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"VLAN_NATS_DATAPATH_LIB={path}: not a Python extension")
    module = importlib.util.module_from_spec(spec)
    sys.modules["vlan_nats._datapath"] = module
    spec.loader.exec_module(module)
    return module

"""Log line formats.  Which one is used is chosen in cli/ only.

Our messages are "fixed text key=value key=value ..." (values may hold
spaces, e.g. error='...'); ``--log-format json`` carries the fields as
members of one JSON object per line.
"""

from __future__ import annotations

import json
import logging
import re

_FIELD_RE = re.compile(r"(?:^|\s)([a-z_][a-z0-9_]*)=")


def split_fields(message: str) -> tuple[str, dict[str, str]]:
    """``"ready dev=x mac=y"`` -> ``("ready", {"dev": "x", "mac": "y"})``.

    A value runs up to the next `` key=``; text after the fields (": ...")
    stays with the last value.  A message without fields is returned whole."""
    matches = list(_FIELD_RE.finditer(message))
    if not matches:
        return message, {}
    text = message[: matches[0].start()].strip()
    fields: dict[str, str] = {}
    for m, nxt in zip(matches, [*matches[1:], None], strict=True):
        end = nxt.start() if nxt is not None else len(message)
        fields[m.group(1)] = message[m.end() : end].strip()
    return text, fields


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text, fields = split_fields(record.getMessage())
        out: dict[str, object] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": text,
        }
        for k, v in fields.items():
            out.setdefault(k, v)  # a field never hides ts/level/logger/msg
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)

"""Rate-limited logging for conditions that can recur many times a second."""

from __future__ import annotations

import logging
import time


class RateLimitedLog:
    """Log a recurring condition at most once per ``interval`` seconds."""

    def __init__(self, logger: logging.Logger, interval: float = 10.0) -> None:
        self.logger = logger
        self.interval = interval
        self._last = -1e9
        self._suppressed = 0

    def warning(self, msg: str, *args: object) -> None:
        self.log(logging.WARNING, msg, *args)

    def log(self, level: int, msg: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last < self.interval:
            self._suppressed += 1
            return
        if self._suppressed:
            msg += " suppressed=%d"
            args = (*args, self._suppressed)
        self._last, self._suppressed = now, 0
        self.logger.log(level, msg, *args)

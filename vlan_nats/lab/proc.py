"""Child processes whose stderr is collected line by line."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable


def spawn(
    cmd: list[str], lines: list[str], on_line: Callable[[str], None]
) -> subprocess.Popen[str]:
    """Start ``cmd`` in its own session; a thread appends each stderr line
    to ``lines`` and calls ``on_line`` with it."""
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
    )

    def _read() -> None:
        assert proc.stderr is not None
        try:
            for line in proc.stderr:
                line = line.rstrip()
                lines.append(line)
                on_line(line)
        except (ValueError, OSError):
            pass  # the owner closed the pipe while stopping the process

    reader = threading.Thread(target=_read, daemon=True)
    reader.start()
    _readers[proc.pid] = reader
    return proc


_readers: dict[int, threading.Thread] = {}


def all_lines(proc: subprocess.Popen[str], timeout: float = 5.0) -> None:
    """After ``proc`` exited: until its reader thread has taken the last line."""
    reader = _readers.pop(proc.pid, None)
    if reader is not None:
        reader.join(timeout)


def wait_event(event: threading.Event, proc: subprocess.Popen[str], timeout: float) -> bool:
    """Wait for ``event``; False if the process died or time ran out first."""
    deadline = time.monotonic() + timeout
    while not event.wait(0.05):
        if proc.poll() is not None or time.monotonic() > deadline:
            return False
    return True


def stop(proc: subprocess.Popen[str], sig: int, timeout: float) -> int:
    """Signal ``proc`` (if it still runs), wait ``timeout``, then kill it;
    its exit code."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode

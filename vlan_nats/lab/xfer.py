"""A checksummed TCP transfer between two hosts (used by the demo and tests).

    python -m vlan_nats.lab.xfer recv ADDR PORT        # prints JSON when done
    python -m vlan_nats.lab.xfer send ADDR PORT MB [MBPS]  # prints JSON when done

The sender streams ``MB`` MiB of pseudo-random data, at most ``MBPS`` MiB/s
if given; both sides print the byte count, SHA-256 and seconds, so a caller
can compare.
"""

from __future__ import annotations

import hashlib
import json
import random
import socket
import sys
import time

CHUNK = 1 << 20


def recv(addr: str, port: int, timeout: float = 60.0) -> dict[str, object]:
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as srv:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((addr, port))
        srv.listen(1)
        srv.settimeout(timeout)
        print("listening", flush=True)
        conn, _ = srv.accept()
        conn.settimeout(timeout)
        h = hashlib.sha256()
        total = 0
        t0 = time.monotonic()
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        with conn:
            while n := conn.recv_into(buf):
                h.update(view[:n])
                total += n
        secs = time.monotonic() - t0
    return {"bytes": total, "sha256": h.hexdigest(), "seconds": round(secs, 4)}


def send(
    addr: str, port: int, mib: int, rate: float = 0.0, timeout: float = 60.0
) -> dict[str, object]:
    block = random.Random(0x7AB).randbytes(CHUNK)
    h = hashlib.sha256()
    t0 = time.monotonic()
    with socket.create_connection((addr, port), timeout=timeout) as s:
        for i in range(mib):
            if rate:  # pace: MiB number i may leave at t0 + i / rate
                delay = t0 + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            chunk = block[i % 251 :] + block[: i % 251]  # vary the blocks
            s.sendall(chunk)
            h.update(chunk)
        s.shutdown(socket.SHUT_WR)
        s.recv(1)  # wait for the receiver to close: everything arrived
    secs = time.monotonic() - t0
    return {"bytes": mib * CHUNK, "sha256": h.hexdigest(), "seconds": round(secs, 4)}


def main(argv: list[str]) -> int:
    try:
        if argv[0] == "recv":
            out = recv(argv[1], int(argv[2]))
        elif argv[0] == "send":
            rate = float(argv[4]) if len(argv) > 4 else 0.0
            out = send(argv[1], int(argv[2]), int(argv[3]), rate)
        else:
            raise ValueError(argv[0])
    except (IndexError, ValueError):
        print(__doc__, file=sys.stderr)
        return 2
    except OSError as e:
        print(json.dumps({"error": str(e)}))
        return 1
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

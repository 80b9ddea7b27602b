"""What a datapath tells the control plane, and the states of its local MAC
table: declared once here; csrc/build_datapath.py generates the C enums
(vn_gen.h) from them, and the python datapath uses them directly."""

from __future__ import annotations

from enum import IntEnum


class Event(IntEnum):
    NEW_LOCAL = 1  # bridge mode: a new source MAC behind our bridge (C: an upcall)
    MOVED_REMOTE = 2  # a MAC served behind our bridge arrived from the network
    DUP_MAC = 3  # our own MAC arrived from the network (text: the subject)
    DROP = 4  # a refused frame worth a log line (rate-limited)
    DISCONNECTED = 5  # the data connection is down
    RECONNECTED = 6  # ... and back (text: the server URL)
    CLOSED = 7  # libnats gave the data connection up
    ERROR = 8  # an asynchronous error of the data connection (text)
    TAP_ERROR = 9  # reading the TAP failed (reason: errno)
    CONNECTED = 10  # the first connection (text: the URL)
    MOVED_LOCAL = 11  # a MAC heard from the network now behind our bridge
    FULL = 12  # the local table is full: the MAC is reached by flooding only


class LocalState(IntEnum):
    """A MAC in the C datapath's local table (read from the TAP)."""

    SERVED = 1  # subscribed: frames to it are ours
    OVER_CAP = 2  # the table is full: flooding only, counted
    PINNED = 3  # our own MAC: never moves, never ages
    PENDING = 4  # new: waiting for the control plane's verdict

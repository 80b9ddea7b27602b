import socket

import pytest

from vlan_nats import fastpath


@pytest.fixture(params=["c", "python"])
def backend(request):
    """Run a test against both fast-path backends."""
    before = fastpath.backend
    fastpath.set_backend(request.param)
    yield request.param
    fastpath.backend = before


@pytest.fixture
def fake_tap():
    """A non-blocking SOCK_SEQPACKET pair: one end stands in for the TAP fd
    (frame boundaries kept, EAGAIN when empty), the other is the 'kernel'."""
    ours, kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.setblocking(False)
    kernel.setblocking(False)
    yield ours, kernel
    ours.close()
    kernel.close()

import pytest

from vlan_nats import fastpath
from vlan_nats.core import wire

FRAME = bytes.fromhex("0200000000020200000000010800") + bytes(range(46))


def test_c_constants_match_python_copies():
    pytest.importorskip("vlan_nats._fastpath")
    c = fastpath._CBackend(__import__("vlan_nats._fastpath", fromlist=["ffi"])).constants()
    assert c == fastpath._PyBackend().constants()
    assert c["VNET_HDR_LEN"] == wire.VNET_HDR_LEN


def test_read_batch_drains_until_eagain(backend, fake_tap):
    ours, kernel = fake_tap
    frames = [bytes(12) + FRAME + bytes([i]) * i for i in range(5)]
    for f in frames:
        kernel.send(f)
    r = fastpath.FrameReader(ours.fileno(), batch=3)
    assert r.read() == 3
    got = [bytes(r.view[i * r.slot + 2 : i * r.slot + 2 + r.lens[i]]) for i in range(3)]
    assert got == frames[:3]
    assert r.read() == 2
    assert r.read() == 0  # EAGAIN


def test_buffers_hold_a_64k_frame(backend, fake_tap):
    ours, kernel = fake_tap
    big = bytes(12) + FRAME + bytes(65536 - len(FRAME))
    kernel.send(big)
    r = fastpath.FrameReader(ours.fileno(), batch=2)
    assert r.read() == 1 and r.lens[0] == len(big)


def test_writer_prepends_zero_vnet_and_batches(backend, fake_tap):
    ours, kernel = fake_tap
    w = fastpath.FrameWriter(ours.fileno(), capacity=4096, max_frames=4)
    plain = wire.encode(FRAME)
    vh = bytes([1, 0, 0, 0, 0, 0, 34, 0, 16, 0, 0, 0])
    with_vnet = wire.encode(FRAME, vh)
    assert w.add(memoryview(plain), 2, False)
    assert w.add(memoryview(with_vnet), 2, True)
    assert w.flush() == (2, [])
    assert kernel.recv(70000) == bytes(12) + FRAME
    assert kernel.recv(70000) == vh + FRAME
    assert w.flush() == (0, [])


def test_writer_reports_full(backend, fake_tap):
    ours, _ = fake_tap
    w = fastpath.FrameWriter(ours.fileno(), capacity=200, max_frames=2)
    m = memoryview(wire.encode(FRAME))
    assert w.add(m, 2, False) and w.add(m, 2, False)
    assert not w.add(m, 2, False)  # max_frames
    w.flush()
    big = memoryview(wire.encode(FRAME + bytes(200)))
    assert not w.add(big, 2, False)  # capacity


def test_writer_counts_failures(backend, fake_tap):
    ours, kernel = fake_tap
    kernel.close()
    w = fastpath.FrameWriter(ours.fileno())
    w.add(memoryview(wire.encode(FRAME)), 2, False)
    ok, failures = w.flush()
    assert ok == 0 and len(failures) == 1 and failures[0] != 0

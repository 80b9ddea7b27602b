from vlan_nats.control.watch import parse_dev_mcast

TEXT = """\
1    lo              1     0     01005e000001
7    vnats0          1     0     333300000001
7    vnats0          2     0     3333ff9a0b1c
7    vnats0          1     0     01005e000001
8    other           1     0     333300000001
7    vnats0          1     0     zz
"""


def test_parse_dev_mcast():
    assert parse_dev_mcast(TEXT, 7) == {
        bytes.fromhex("333300000001"),
        bytes.fromhex("3333ff9a0b1c"),
        bytes.fromhex("01005e000001"),
    }
    assert parse_dev_mcast(TEXT, 9) == frozenset()
    assert parse_dev_mcast("", 7) == frozenset()

import pytest

from vlan_nats.core.status import Status
from vlan_nats.errors import ControlError
from vlan_nats.top import networks


def test_networks_default_to_those_of_the_local_daemons():
    local = [Status(network="7", dev="a"), Status(network="lab", dev="b"), Status(network="7")]
    assert networks(None, local) == ["7", "lab"]
    assert networks("9", local) == ["9"]  # --network given: that one only


def test_no_network_and_no_local_daemon_says_why():
    with pytest.raises(ControlError, match="give --network"):
        networks(None, [])

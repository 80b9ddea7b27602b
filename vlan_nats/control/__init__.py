"""Link control: network namespaces, pyroute2 link setup, netlink watching."""

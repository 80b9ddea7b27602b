"""Lab tooling shared by ``vlan-nats demo``, the integration tests and the
scripts: a private nats-server, namespaces with unique names, daemons."""

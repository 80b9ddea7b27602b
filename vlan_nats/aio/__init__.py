"""The asyncio layer: the NATS connection and the tunnel loop."""

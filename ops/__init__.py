"""Operator commands: provisioning the streams, the bus users' permissions, listing dead letters."""

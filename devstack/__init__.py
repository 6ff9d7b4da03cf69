"""The local stack for `make run` and the tests: embedded nats-server and PostgreSQL, and the service processes."""

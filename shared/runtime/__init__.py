"""How a service runs: bus connections, the event store, deciding and appending, projections, dead letters,
health and metrics, settings, logging, Postgres."""

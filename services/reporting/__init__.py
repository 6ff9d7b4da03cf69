"""Reporting service: projections that build the Postgres read models from the event stream."""

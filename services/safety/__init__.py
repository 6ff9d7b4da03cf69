"""Safety service: adverse events, serious adverse event alerts, acknowledgement and escalation."""

"""The gateway's routes, one router per area: forms sites post, subject reads, safety alerts, reports, exports."""

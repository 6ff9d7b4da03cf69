"""What the services, the gateway and the safety team agree on: events, commands and forms, the protocol
definition, rule errors, the visit schedule, roles and rights, signed commands, SAE alert messages."""

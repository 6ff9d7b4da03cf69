"""Gateway: the HTTP door for site apps, monitors and the safety team."""

"""The trial's services, one package each; no service imports another."""

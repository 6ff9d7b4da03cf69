"""What every service of the trial backend needs: events, event store, projections, config, logging."""

"""Visits service: the surgery record, the follow-up schedule, deviations, withdrawal and completion."""

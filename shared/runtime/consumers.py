"""A durable consumer as its owner made it: what decides which messages it delivers, checked at start and on a
clock. A consumer changed behind its owner's back (another filter, no acknowledgement, one delivery) is an alarm and
is made again, never a silent stop."""

from dataclasses import dataclass

import nats.js.errors
import structlog
from nats.js import JetStreamContext, api

from shared.runtime.metrics import CONSUMER_DRIFT

log = structlog.get_logger(__name__)

# How often a running owner looks at its consumer again.
CHECK_SECONDS = 15.0


@dataclass(frozen=True)
class Delivery:
    """What a consumer delivers and how often: the parts of its configuration that lose messages when changed."""

    filters: frozenset[str]
    ack_policy: api.AckPolicy | None
    max_deliver: int  # -1: until acknowledged

    @classmethod
    def of(cls, config: api.ConsumerConfig) -> "Delivery":
        filters = config.filter_subjects or ([config.filter_subject] if config.filter_subject else [])
        max_deliver = config.max_deliver if config.max_deliver is not None and config.max_deliver > 0 else -1
        ack_policy = api.AckPolicy(config.ack_policy) if config.ack_policy else None  # a string from the server
        return cls(frozenset(filters), ack_policy, max_deliver)

    def __str__(self) -> str:
        ack = self.ack_policy.value if self.ack_policy else "default"
        return f"filters {sorted(self.filters)}, ack {ack}, max deliveries {self.max_deliver}"


async def drifted(js: JetStreamContext, stream: str, config: api.ConsumerConfig, *, gone: bool = True) -> bool:
    """Whether the durable consumer `config` names delivers otherwise than `config` says (or is gone, unless `gone`
    is False: about to be made); an alarm (error log, `trial_consumer_drift_total`) when it does."""
    name = config.durable_name or config.name
    assert name is not None
    try:
        found: Delivery | None = Delivery.of((await js.consumer_info(stream, name)).config)
    except nats.js.errors.NotFoundError:
        found = None
    expected = Delivery.of(config)
    if found == expected or (found is None and not gone):
        return False
    CONSUMER_DRIFT.labels(consumer=name).inc()
    log.error(
        "consumer_drift", stream=stream, consumer=name, expected=str(expected), found=str(found) if found else "gone"
    )
    return True

"""`python -m ops.provision`: create or update the streams and the safety team's consumer, then exit.

Run by the Kubernetes migration Job before any service starts; services only check that the streams exist.
"""

import asyncio
import sys

from pydantic import Field

from shared.runtime import bus
from shared.runtime.alerts import provision_safety_team_consumer
from shared.runtime.eventstore import StreamSettings, provision_streams
from shared.runtime.logging import configure_logging
from shared.runtime.settings import TrialSettings, load_settings


class ProvisionSettings(TrialSettings):
    safety_team_ack_wait_seconds: float = Field(
        60.0, gt=0, description="an unacknowledged SAE alert is delivered to the safety team again after this"
    )


async def provision(settings: ProvisionSettings) -> None:
    nc = await bus.connect(settings.nats_url, name="trial-provision")
    try:
        js = nc.jetstream()
        await provision_streams(js, StreamSettings(replicas=settings.stream_replicas))
        await provision_safety_team_consumer(js, ack_wait=settings.safety_team_ack_wait_seconds)
    finally:
        await nc.close()


def main() -> int:
    settings = load_settings(ProvisionSettings)
    configure_logging(settings.log_level, settings.log_format, service="provision")
    asyncio.run(provision(settings))
    print("streams and consumers provisioned")
    return 0


if __name__ == "__main__":
    sys.exit(main())

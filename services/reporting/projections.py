"""Read-model projections. One `match` case per event type used; every other event only advances the checkpoint."""

from shared.events import ConsentRecorded, RecordedEvent
from shared.postgres import Connection
from shared.projections import Projection

UPSERT_CONSENTED = """
INSERT INTO subjects AS s (subject_id, site, state, consent_form_version, consented_on,
                           first_event_at, last_event_at, last_event_type, last_sequence)
VALUES ($1, $2, 'consented', $3, $4, $5, $5, $6, $7)
ON CONFLICT (subject_id) DO UPDATE
   SET consent_form_version = EXCLUDED.consent_form_version,
       consented_on = EXCLUDED.consented_on,
       last_event_at = EXCLUDED.last_event_at,
       last_event_type = EXCLUDED.last_event_type,
       last_sequence = EXCLUDED.last_sequence
"""


class SubjectsProjection:
    """`subjects`: each subject's site and state, for the gateway's reads and the reports."""

    name = "subjects"

    async def apply(self, conn: Connection, event: RecordedEvent) -> None:
        envelope = event.envelope
        match envelope.data:
            case ConsentRecorded() as consent:
                await conn.execute(
                    UPSERT_CONSENTED,
                    envelope.subject,
                    envelope.siteid,
                    consent.consent_form_version,
                    consent.signed_on,
                    envelope.time,
                    envelope.type,
                    event.sequence,
                )
            case _:
                pass

    async def reset(self, conn: Connection) -> None:
        await conn.execute("TRUNCATE subjects")


def all_projections() -> list[Projection]:
    return [SubjectsProjection()]

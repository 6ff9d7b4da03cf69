"""Every event as recorded: who, what, when, why, under which protocol version; a correction's old → new."""

from shared.contracts.casebook import field_changes, form_of
from shared.contracts.events import RecordedEvent
from shared.readmodels.catalogue import TABLES, ReadModel
from shared.runtime.postgres import JsonText
from shared.runtime.writebatch import Insert, WriteBatch

INSERT_AUDIT = Insert(
    "audit_trail",
    (
        "sequence", "event_id", "event_type", "schema_version", "site", "subject_id", "recorded_at", "actor",
        "actor_role", "actor_site", "actor_token", "reason", "protocol_version", "correlation_id", "causation_id",
        "data", "changes", "form",
    ),
)  # fmt: skip

SUPERSEDED_DATA = "SELECT data FROM audit_trail WHERE event_id = $1"


class AuditTrailProjection:
    """`audit_trail`: every event with who, when, why, protocol version and correlation, in stream order."""

    name: str = ReadModel.AUDIT_TRAIL
    tables: tuple[str, ...] = TABLES[ReadModel.AUDIT_TRAIL]

    async def apply(self, writes: WriteBatch, event: RecordedEvent) -> None:
        e = event.envelope
        changes = None
        if (supersedes := getattr(e.data, "supersedes", None)) is not None:
            # The record it corrects is earlier in the stream, so already here.
            old = await writes.fetchval(SUPERSEDED_DATA, supersedes)
            changes = field_changes(old or {}, e.data.model_dump(mode="json"))
        await writes.execute(
            INSERT_AUDIT,
            event.sequence,
            e.id,
            e.type,
            e.schemaversion,
            e.siteid,
            e.subject,
            e.time,
            e.actor,
            e.actorrole,
            e.actorsite,
            e.actortoken,
            e.reason,
            e.protocolversion,
            e.correlationid,
            e.causationid,
            JsonText(event.data_json),
            changes,
            form_of(e.data),
        )

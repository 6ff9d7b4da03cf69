"""Every screening with every criterion's result (the CONSORT exclusions)."""

from shared.contracts.events import RecordedEvent, SubjectScreened
from shared.readmodels.catalogue import TABLES, ReadModel
from shared.runtime.writebatch import Insert, WriteBatch

INSERT_SCREENING = Insert(
    "screening_log",
    (
        "subject_id", "screening_number", "site", "screening_date", "eligible", "bmi", "protocol_version",
        "recorded_at", "sequence", "age_years", "sex",
    ),
)  # fmt: skip


# A correction replaces the screening it corrects (same number), criteria and all; the audit trail keeps both.
DELETE_CORRECTED = """
WITH criteria AS (DELETE FROM screening_criteria WHERE subject_id = $1 AND screening_number = $2)
DELETE FROM screening_log WHERE subject_id = $1 AND screening_number = $2
"""


INSERT_CRITERIA = Insert(
    "screening_criteria", ("subject_id", "screening_number", "code", "kind", "outcome", "blocks", "value", "rule")
)


class ScreeningLogProjection:
    """`screening_log` and `screening_criteria`: every screening with every criterion's result."""

    name: str = ReadModel.SCREENING_LOG
    tables: tuple[str, ...] = TABLES[ReadModel.SCREENING_LOG]

    async def apply(self, writes: WriteBatch, event: RecordedEvent) -> None:
        e = event.envelope
        match e.data:
            case SubjectScreened() as screened:
                if screened.supersedes is not None:
                    await writes.execute(DELETE_CORRECTED, e.subject, screened.screening_number)
                await writes.execute(
                    INSERT_SCREENING,
                    e.subject,
                    screened.screening_number,
                    e.siteid,
                    screened.screening_date,
                    screened.eligible,
                    screened.bmi,
                    e.protocolversion,
                    e.time,
                    event.sequence,
                    screened.form.age_years,
                    screened.form.sex,
                )
                await writes.executemany(
                    INSERT_CRITERIA,
                    [
                        (e.subject, screened.screening_number, r.code, r.kind.value, r.outcome.value,
                         r.blocks_eligibility, r.value, r.rule)
                        for r in screened.criteria
                    ],
                )  # fmt: skip
            case _:
                pass

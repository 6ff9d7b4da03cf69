"""Every screening with every criterion's result (the CONSORT exclusions)."""

from shared.contracts.events import RecordedEvent, SubjectScreened
from shared.readmodels.catalogue import TABLES, ReadModel
from shared.runtime.writebatch import WriteBatch

INSERT_SCREENING = """
INSERT INTO screening_log (subject_id, screening_number, site, screening_date, eligible, bmi,
                           protocol_version, recorded_at, sequence, age_years, sex)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
"""


# A correction replaces the screening it corrects (same number), criteria and all; the audit trail keeps both.
DELETE_CORRECTED = """
WITH criteria AS (DELETE FROM screening_criteria WHERE subject_id = $1 AND screening_number = $2)
DELETE FROM screening_log WHERE subject_id = $1 AND screening_number = $2
"""


INSERT_CRITERIA = """
INSERT INTO screening_criteria (subject_id, screening_number, code, kind, outcome, blocks, value, rule)
SELECT $1, $2, c.code, c.kind, c.outcome, c.blocks, c.value, c.rule
  FROM unnest($3::text[], $4::text[], $5::text[], $6::boolean[], $7::text[], $8::text[])
       AS c(code, kind, outcome, blocks, value, rule)
"""


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
                c = screened.criteria
                await writes.execute(
                    INSERT_CRITERIA,
                    e.subject,
                    screened.screening_number,
                    [r.code for r in c],
                    [r.kind.value for r in c],
                    [r.outcome.value for r in c],
                    [r.blocks_eligibility for r in c],
                    [r.value for r in c],
                    [r.rule for r in c],
                )
            case _:
                pass

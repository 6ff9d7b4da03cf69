"""The screening log against real Postgres: a corrected screening replaces the one it corrects, criteria and all."""

from dataclasses import replace
from decimal import Decimal
from uuid import UUID

import asyncpg
import pytest

from services.reporting.app import MIGRATIONS
from services.reporting.projections import ScreeningLogProjection
from services.screening.eligibility import evaluate
from shared.contracts.events import RecordedEvent, SubjectScreened
from shared.contracts.forms import ScreeningForm
from shared.contracts.protocol import ProtocolDefinition
from shared.runtime.postgres import SHARED_MIGRATIONS, apply_migrations
from shared.runtime.projections import apply_batch, ensure_checkpoint
from tests.unit.history import recorded

pytestmark = pytest.mark.integration

FORM = ScreeningForm.model_validate(
    {"screening_date": "2026-01-05", "age_years": 40, "sex": "female", "height_cm": 160, "weight_kg": 58}
)


def screened(protocol: ProtocolDefinition, sequence: int, weight_kg: int, supersedes: UUID | None) -> RecordedEvent:
    form = FORM.model_copy(update={"weight_kg": Decimal(weight_kg)})
    result = evaluate(form, protocol.eligibility, consent_form_version=protocol.consent_form_versions[-1])
    event = SubjectScreened(
        screening_number=1,
        screening_date=form.screening_date,
        eligible=result.eligible,
        bmi=result.bmi,
        criteria=result.criteria,
        form=form,
        supersedes=supersedes,
    )
    return replace(recorded(event), sequence=sequence)


@pytest.fixture
async def read_model(pool: asyncpg.Pool) -> asyncpg.Pool:
    await apply_migrations(pool, "projections", SHARED_MIGRATIONS)
    await apply_migrations(pool, "reporting", MIGRATIONS)
    return pool


@pytest.mark.parametrize("batches", [1, 2], ids=["one batch", "a batch each"])
async def test_a_corrected_screening_replaces_the_criteria_of_the_one_it_corrects(
    read_model: asyncpg.Pool, protocol: ProtocolDefinition, batches: int
) -> None:
    first = screened(protocol, 1, weight_kg=58, supersedes=None)
    correction = screened(protocol, 2, weight_kg=30, supersedes=first.envelope.id)
    projection = ScreeningLogProjection()
    async with read_model.acquire() as conn:
        await ensure_checkpoint(conn, projection.name)
        for events in ([first, correction],) if batches == 1 else ([first], [correction]):
            async with conn.transaction():
                await apply_batch(conn, projection, events)
        log = await conn.fetch("SELECT eligible, bmi, sequence FROM screening_log")
        blocking = await conn.fetch("SELECT code FROM screening_criteria WHERE blocks ORDER BY code")
        criteria = await conn.fetchval("SELECT count(*) FROM screening_criteria")
    assert [tuple(row) for row in log] == [(False, Decimal("11.7"), 2)]
    corrected = correction.envelope.data
    assert isinstance(corrected, SubjectScreened)
    assert [row["code"] for row in blocking] == sorted(corrected.reasons)
    assert criteria == len(corrected.criteria)

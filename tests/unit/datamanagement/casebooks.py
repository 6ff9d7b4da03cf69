"""A subject's casebook as data-management tests build it: facts recorded by someone, in order."""

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import UUID, uuid4

from services.datamanagement import domain
from shared.contracts.access import Role
from shared.contracts.commands import ActorContext
from shared.contracts.events import (
    ConsentRecorded,
    DomainEvent,
    EventEnvelope,
    RecordedEvent,
    SubjectScreened,
)
from shared.contracts.forms import ELIGIBLE_EXAMPLE, QueryOpening, QueryStep, ScreeningForm
from shared.contracts.protocol import load_protocol
from shared.runtime.settings import DEFAULT_PROTOCOL_FILE
from tests.unit.history import META

FORMS = load_protocol(DEFAULT_PROTOCOL_FILE).forms

MONITOR, OTHER_MONITOR, SITE, DATA_MANAGER = "monitor-1", "monitor-2", "crc-1", "dm-1"
ROLES = {
    MONITOR: Role.MONITOR,
    OTHER_MONITOR: Role.MONITOR,
    SITE: Role.SITE_COORDINATOR,
    DATA_MANAGER: Role.DATA_MANAGER,
}
CONSENT = ConsentRecorded(
    consent_form_version="1.0",
    signed_on=date(2026, 1, 5),
    obtained_by="inv-01",
    signed_by_subject=True,
    signed_by_representative=False,
)


def screened(weight: str = "55", supersedes: UUID | None = None) -> SubjectScreened:
    form = ScreeningForm.model_validate({**ELIGIBLE_EXAMPLE, "weight_kg": weight})
    return SubjectScreened(
        screening_number=1,
        screening_date=form.screening_date,
        eligible=True,
        bmi=Decimal("21.5"),
        criteria=(),
        form=form,
        supersedes=supersedes,
    )


def by(actor: str, event: DomainEvent, sequence: int) -> RecordedEvent:
    meta = replace(META, actor=actor, actor_role=ROLES.get(actor), reason="as recorded" if event.needs_reason else None)
    time = datetime(2026, 1, 10, 9, tzinfo=UTC)
    return RecordedEvent(sequence, "", EventEnvelope.wrap(event, meta, event_id=uuid4(), time=time))


class Casebook:
    """A subject's history as it grows, each fact recorded by someone."""

    def __init__(self, *facts: tuple[str, DomainEvent]) -> None:
        self.history: list[RecordedEvent] = []
        for actor, fact in facts:
            self.record(actor, fact)

    def record(self, actor: str, *facts: DomainEvent) -> list[RecordedEvent]:
        added = [by(actor, f, len(self.history) + i + 1) for i, f in enumerate(facts)]
        self.history += added
        return added

    @property
    def state(self) -> domain.Casebook:
        return domain.replay(self.history)

    def version(self, form: str) -> UUID:
        return self.state.records[form].version


def caller(actor: str) -> ActorContext:
    return ActorContext(
        command_id=uuid4(),
        correlation_id="c",
        actor=actor,
        role=ROLES[actor],
        token_id="t",
        received_at=datetime(2026, 1, 10, tzinfo=UTC),
    )


QUERY_ID = uuid4()


def with_query(field: str | None = "weight_kg") -> Casebook:
    book = Casebook((SITE, CONSENT), (SITE, screened()))
    opening = QueryOpening(form="screening", field=field, text="Source says 43 kg.")
    book.record(MONITOR, *domain.open_query(book.state, opening, query_id=QUERY_ID, dictionary=FORMS))
    return book


def step(text: str | None = "because") -> QueryStep:
    return QueryStep(query_id=QUERY_ID, text=text)

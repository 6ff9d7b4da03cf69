"""Pure rules of data management: the query workflow, source data verification, and reconciling edit-check findings.

A query goes open → answered → closed, or back to re-opened for another answer; only its opener closes or
re-opens it (an edit check's query: the check itself once the data pass, or a data manager). Every step is
an event; nothing is deleted.
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from functools import reduce
from uuid import UUID, uuid5

from shared.contracts.access import Role
from shared.contracts.casebook import FormRecord, answered_items, form_of, has_field
from shared.contracts.commands import ActorContext
from shared.contracts.dictionary import DataDictionary
from shared.contracts.events import (
    AdverseEventReported,
    AdverseEventUpdated,
    CasebookLocked,
    CasebookUnlocked,
    DomainEvent,
    FormVerified,
    ProtocolDeviationRecorded,
    QueryAnswered,
    QueryClosed,
    QueryOpened,
    QueryReopened,
    RandomizationInvalidated,
    RecordedEvent,
    SignatureApplied,
    SubjectCompletedStudy,
    SubjectRandomized,
    SubjectWithdrawn,
)
from shared.contracts.forms import (
    ActionTaken,
    AdverseEventOutcome,
    FormVerificationRecord,
    QueryOpening,
    QueryStep,
    SignatureKind,
)
from shared.contracts.rules import RecordedBefore, Refusal, RuleViolation
from shared.readmodels.states import QueryState


class FormNotRecorded(RuleViolation):
    rule, kind, title = "casebook.form", Refusal.NOT_FOUND, "The subject has no such form"


class UnknownField(RuleViolation):
    rule, kind, title = "query.field", Refusal.INVALID, "The form has no such field"


class UnknownQuery(RuleViolation):
    rule, kind, title = "query.known", Refusal.NOT_FOUND, "No such query"


class NotAwaitingAnswer(RuleViolation):
    rule, title = "query.awaiting_answer", "The query is not waiting for an answer"


class AlreadyClosed(RuleViolation):
    rule, title = "query.open", "The query is closed"


class NothingToReopen(RuleViolation):
    rule, title = "query.reopen_answered_or_closed", "Only an answered or closed query can be re-opened"


class NotTheOpener(RuleViolation):
    rule, kind, title = "query.opener", Refusal.FORBIDDEN, "Only the query's opener may close or re-open it"


class TextRequired(RuleViolation):
    rule, kind, title = "query.text", Refusal.INVALID, "Text required"


class StaleVerification(RuleViolation):
    rule, kind, title = "sdv.current_version", Refusal.STALE, "Only the form's current record can be verified"


@dataclass(frozen=True, slots=True)
class Query:
    query_id: UUID
    form: str
    field: str | None
    opened_by: str
    form_version: UUID
    check: str | None
    state: QueryState = QueryState.OPEN

    @property
    def is_open(self) -> bool:
        return self.state is not QueryState.CLOSED


@dataclass(frozen=True, slots=True)
class AdverseEventCourse:
    """What the edit checks need of one adverse event: its current values and when it was last heard of."""

    term: str
    onset_date: date
    serious_since: datetime | None
    outcome: AdverseEventOutcome
    last_follow_up_at: datetime | None
    action_taken: ActionTaken


@dataclass(frozen=True)
class Casebook:
    """A subject's forms as data management sees them: current records, queries, verifications."""

    records: dict[str, FormRecord] = field(default_factory=dict)
    queries: dict[UUID, Query] = field(default_factory=dict)
    verified: dict[str, UUID] = field(default_factory=dict)
    # The items verified one by one, per form: the record they were verified on, and which.
    verified_items: dict[str, tuple[UUID, frozenset[str]]] = field(default_factory=dict)
    randomized_at: datetime | None = None
    adverse_events: dict[UUID, AdverseEventCourse] = field(default_factory=dict)
    lock: CasebookLocked | None = None
    last_sequence: int = 0
    # Participation over (completed, withdrawn, died): the casebook can be signed as complete.
    ended: bool = False
    signatures: dict[SignatureKind, SignatureApplied] = field(default_factory=dict)

    @property
    def locked(self) -> bool:
        return self.lock is not None


def evolve(book: Casebook, event: RecordedEvent) -> Casebook:
    e = event.envelope
    book = replace(book, last_sequence=event.sequence, ended=book.ended or _ends_participation(e.data))
    form = form_of(e.data)
    if form is not None:
        book = replace(book, records={**book.records, form: FormRecord(form, e.id, event.sequence, e.time, e.data)})
    match e.data:
        case QueryOpened() as q:
            opened = Query(q.query_id, q.form, q.field, e.actor, q.form_version, q.check)
            return replace(book, queries={**book.queries, q.query_id: opened})
        case QueryAnswered(query_id=query_id):
            return _step(book, query_id, QueryState.ANSWERED)
        case QueryClosed(query_id=query_id):
            return _step(book, query_id, QueryState.CLOSED)
        case QueryReopened(query_id=query_id):
            return _step(book, query_id, QueryState.REOPENED)
        case FormVerified() as v:
            checked = book.verified_items.get(v.form)
            kept = checked[1] if checked and checked[0] == v.version else frozenset()
            items = {**book.verified_items, v.form: (v.version, kept | set(v.items))}
            verified = {**book.verified, v.form: v.version} if v.record_verified else book.verified
            return replace(book, verified=verified, verified_items=items)
        case SignatureApplied() as signature:
            return replace(book, signatures={**book.signatures, signature.kind: signature})
        case CasebookLocked() as lock:
            return replace(book, lock=lock)
        case CasebookUnlocked():
            return replace(book, lock=None)
        case SubjectRandomized():
            return replace(book, randomized_at=e.time)
        case RandomizationInvalidated():
            return replace(book, randomized_at=None)
        case AdverseEventReported() as r:
            earlier = book.adverse_events.get(r.ae_id)
            course = AdverseEventCourse(
                r.term,
                r.onset_date,
                (earlier.serious_since if earlier and earlier.serious_since else e.time) if r.serious else None,
                r.outcome,
                earlier.last_follow_up_at if earlier else None,
                r.action_taken,
            )
            return replace(book, adverse_events={**book.adverse_events, r.ae_id: course})
        case AdverseEventUpdated() as u if u.ae_id in book.adverse_events:
            was = book.adverse_events[u.ae_id]
            serious_since = (was.serious_since or e.time) if u.serious else None
            course = replace(
                was,
                serious_since=serious_since,
                outcome=u.outcome or was.outcome,
                last_follow_up_at=e.time,
                action_taken=u.action_taken or was.action_taken,
            )
            return replace(book, adverse_events={**book.adverse_events, u.ae_id: course})
        case _:
            return book


def _ends_participation(data: DomainEvent) -> bool:
    match data:
        case (
            SubjectCompletedStudy() | SubjectWithdrawn() | AdverseEventReported(grade=5) | AdverseEventUpdated(grade=5)
        ):
            return True
        case _:
            return False


def _step(book: Casebook, query_id: UUID, state: QueryState) -> Casebook:
    query = book.queries.get(query_id)
    if query is None:
        return book
    return replace(book, queries={**book.queries, query_id: replace(query, state=state)})


def replay(history: Sequence[RecordedEvent]) -> Casebook:
    return reduce(evolve, history, Casebook())


def _record(book: Casebook, form: str) -> FormRecord:
    record = book.records.get(form)
    if record is None:
        raise FormNotRecorded(f"the subject has no {form} form recorded", field="form")
    return record


def _query(book: Casebook, query_id: UUID) -> Query:
    query = book.queries.get(query_id)
    if query is None:
        raise UnknownQuery(f"the subject has no query {query_id}", field="query")
    return query


def _text(step: QueryStep) -> str:
    if not step.text or not step.text.strip():
        raise TextRequired("say what the answer or the reason to re-open is", field="text")
    return step.text


def open_query(book: Casebook, form: QueryOpening, *, query_id: UUID, dictionary: DataDictionary) -> list[DomainEvent]:
    record = _record(book, form.form)
    if form.field is not None and not has_field(dictionary, form.form, form.field):
        raise UnknownField(f"{form.form} has no field {form.field}", field="field")
    return [
        QueryOpened(query_id=query_id, form=form.form, field=form.field, text=form.text, form_version=record.version)
    ]


def answer_query(book: Casebook, step: QueryStep) -> list[DomainEvent]:
    query = _query(book, step.query_id)
    if query.state not in (QueryState.OPEN, QueryState.REOPENED):
        raise NotAwaitingAnswer(f"query {query.query_id} is {query.state}", field="query")
    return [QueryAnswered(query_id=query.query_id, text=_text(step))]


def _check_opener(query: Query, caller: ActorContext) -> None:
    # An edit check's query has no person as opener: the data managers, who own the checks, stand in.
    if caller.actor == query.opened_by or (query.check is not None and caller.role == Role.DATA_MANAGER):
        return
    raise NotTheOpener(f"query {query.query_id} was opened by {query.opened_by}", field="query")


def close_query(book: Casebook, step: QueryStep, *, caller: ActorContext) -> list[DomainEvent]:
    query = _query(book, step.query_id)
    _check_opener(query, caller)
    if not query.is_open:
        raise AlreadyClosed(f"query {query.query_id} is closed already", field="query")
    return [QueryClosed(query_id=query.query_id, text=step.text)]


def reopen_query(book: Casebook, step: QueryStep, *, caller: ActorContext) -> list[DomainEvent]:
    query = _query(book, step.query_id)
    _check_opener(query, caller)
    if query.state not in (QueryState.ANSWERED, QueryState.CLOSED):
        raise NothingToReopen(f"query {query.query_id} is {query.state}", field="query")
    return [QueryReopened(query_id=query.query_id, text=_text(step))]


def verify_form(
    book: Casebook, verification: FormVerificationRecord, *, dictionary: DataDictionary
) -> list[DomainEvent]:
    """The whole record, or some of its items: the record counts as verified once every item holding an answer
    is, by this step and the earlier ones on the same record."""
    form = verification.form
    record = _record(book, form)
    if record.version != verification.version:
        raise StaleVerification(
            f"{form}'s current record is {record.version}, not {verification.version}",
            field="version",
            current_version=record.version,
        )
    whole = FormVerified(form=form, version=record.version)
    if book.verified.get(form) == record.version:
        raise RecordedBefore(whole)
    if not verification.items:
        return [whole]
    if unknown := [item for item in verification.items if not has_field(dictionary, form, item)]:
        raise UnknownField(f"{form} has no item {unknown[0]}", field="items")
    earlier = book.verified_items.get(form)
    done = earlier[1] if earlier and earlier[0] == record.version else frozenset()
    answered = answered_items(dictionary, form, record.data.model_dump(mode="json"))
    step = FormVerified(
        form=form,
        version=record.version,
        items=tuple(sorted(set(verification.items))),
        record_verified=answered <= done | set(verification.items),
    )
    if set(verification.items) <= done:
        raise RecordedBefore(step)
    return [step]


@dataclass(frozen=True, slots=True)
class Finding:
    """An edit check holding on a form: the query it needs."""

    check: str
    form: str
    field: str | None
    text: str
    parameters: dict[str, str]
    # A check of what the protocol forbids records a deviation with its first query on the form, on this date.
    deviation: bool = False
    occurred_on: date | None = None


RESOLVED = "Resolved: the data no longer raise this check."


def reconcile(
    book: Casebook, findings: Iterable[Finding], *, checked: frozenset[str], query_ids: Callable[[Finding], UUID]
) -> list[DomainEvent]:
    """Open a query for each new finding; close the edit checks' queries whose finding is gone.

    A finding is new unless a query of the same check on the same form and field is open, or was closed
    (by a data manager: the value is right) on the same record: a correction of that record asks again.
    A finding of what the protocol forbids records its deviation with the first query on the form, and only then:
    what happened stays a fact when the query is closed or the value corrected.
    """
    found = list(findings)
    events: list[DomainEvent] = []
    automatic = [q for q in book.queries.values() if q.check is not None]
    for finding in found:
        version = book.records[finding.form].version
        raised = any(
            (q.check, q.form, q.field) == (finding.check, finding.form, finding.field)
            and (q.is_open or q.form_version == version)
            for q in automatic
        )
        if not raised:
            query_id = query_ids(finding)
            if finding.deviation and not any((q.check, q.form) == (finding.check, finding.form) for q in automatic):
                events.append(
                    ProtocolDeviationRecorded(
                        deviation_id=uuid5(query_id, "deviation"),
                        code=finding.check,
                        description=finding.text[:500],
                        related_event_id=version,
                        occurred_on=finding.occurred_on,
                    )
                )
            events.append(
                QueryOpened(
                    query_id=query_id,
                    form=finding.form,
                    field=finding.field,
                    text=finding.text,
                    form_version=version,
                    check=finding.check,
                    parameters=finding.parameters,
                )
            )
    holding = {(f.check, f.form, f.field) for f in found}
    for q in automatic:
        if q.is_open and q.check in checked and (q.check, q.form, q.field) not in holding:
            events.append(QueryClosed(query_id=q.query_id, text=RESOLVED))
    return events

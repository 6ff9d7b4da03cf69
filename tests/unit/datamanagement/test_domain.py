"""The query workflow, source data verification and edit-check reconciliation: every transition and refusal,
and properties over any sequence of actions."""

from dataclasses import replace
from datetime import UTC, date, datetime
from uuid import uuid4, uuid5

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.datamanagement import domain, locks
from shared.contracts.casebook import answered_items, has_field, locked, refuse_if_locked
from shared.contracts.events import (
    CasebookLocked,
    DatabaseLocked,
    DomainEvent,
    EventEnvelope,
    FormVerified,
    ProtocolDeviationRecorded,
    QueryClosed,
    QueryOpened,
    RecordedEvent,
)
from shared.contracts.forms import CasebookLock, CasebookUnlock, FormVerificationRecord, QueryOpening, QueryStep
from shared.contracts.rules import (
    CasebookIsLocked,
    DatabaseIsLocked,
    ReasonRequired,
    RecordedBefore,
    Refusal,
    RuleViolation,
)
from shared.readmodels.states import QueryState
from tests.unit.datamanagement.casebooks import (
    CONSENT,
    DATA_MANAGER,
    FORMS,
    MONITOR,
    OTHER_MONITOR,
    QUERY_ID,
    SITE,
    Casebook,
    by,
    caller,
    screened,
    step,
    with_query,
)
from tests.unit.history import META


def test_a_query_is_opened_on_the_current_record_of_a_form() -> None:
    book = Casebook((SITE, CONSENT), (SITE, screened()))
    [opened] = domain.open_query(
        book.state, QueryOpening(form="screening", field="weight_kg", text="?"), query_id=QUERY_ID, dictionary=FORMS
    )
    assert opened == QueryOpened(
        query_id=QUERY_ID, form="screening", field="weight_kg", text="?", form_version=book.version("screening")
    )


def test_a_query_on_a_form_not_recorded_is_refused() -> None:
    with pytest.raises(domain.FormNotRecorded) as refused:
        domain.open_query(
            Casebook((SITE, CONSENT)).state,
            QueryOpening(form="procedure", text="?"),
            query_id=QUERY_ID,
            dictionary=FORMS,
        )
    assert refused.value.kind is Refusal.NOT_FOUND and refused.value.rule == "casebook.form"


@pytest.mark.parametrize("field", ["weight", "reason", "supersedes", "biopsy.nonsense", "weight_kg.unit"])
def test_a_query_on_a_field_the_form_does_not_have_is_refused(field: str) -> None:
    with pytest.raises(domain.UnknownField):
        with_query(field)


@pytest.mark.parametrize("field", [None, "weight_kg", "biopsy.follicle_orifices_absent", "serology.hiv"])
def test_a_query_may_name_a_field_or_nested_field_of_the_form(field: str | None) -> None:
    assert with_query(field).state.queries[QUERY_ID].field == field


@pytest.mark.parametrize(
    ("form", "field", "known"),
    [
        ("consent-refusal", "reason", True),  # the refusal's own reason category
        ("consent", "reason", False),  # a correction's reason is not part of the form
        ("visit-M6", "hair_density_per_cm2", True),
        ("ae-0f8fad5b-d9cb-469f-a165-70867728950e", "relationship.fat_graft", True),
        ("procedure", "fat_graft.ecm_svf_gel_ml", True),
        ("withdrawal", "visit_date", False),
    ],
)
def test_the_fields_of_each_kind_of_form_are_those_the_site_posts(form: str, field: str, known: bool) -> None:
    assert has_field(FORMS, form, field) is known


def test_the_site_answers_an_open_query_and_the_opener_closes_it() -> None:
    book = with_query()
    book.record(SITE, *domain.answer_query(book.state, step("Corrected.")))
    assert book.state.queries[QUERY_ID].state is QueryState.ANSWERED
    [closed] = domain.close_query(book.state, step(None), caller=caller(MONITOR))
    assert closed == QueryClosed(query_id=QUERY_ID, text=None)


def test_an_answered_query_is_not_answered_again_until_reopened() -> None:
    book = with_query()
    book.record(SITE, *domain.answer_query(book.state, step()))
    with pytest.raises(domain.NotAwaitingAnswer):
        domain.answer_query(book.state, step())
    book.record(MONITOR, *domain.reopen_query(book.state, step("Still 55 in the CRF."), caller=caller(MONITOR)))
    assert book.state.queries[QUERY_ID].state is QueryState.REOPENED
    assert domain.answer_query(book.state, step())


def test_only_the_opener_closes_or_reopens_a_persons_query() -> None:
    book = with_query()
    for someone in (OTHER_MONITOR, DATA_MANAGER, SITE):
        with pytest.raises(domain.NotTheOpener) as refused:
            domain.close_query(book.state, step(), caller=caller(someone))
        assert refused.value.kind is Refusal.FORBIDDEN
    book.record(SITE, *domain.answer_query(book.state, step()))
    with pytest.raises(domain.NotTheOpener):
        domain.reopen_query(book.state, step(), caller=caller(OTHER_MONITOR))


def test_a_data_manager_closes_an_edit_checks_query_a_monitor_does_not() -> None:
    book = with_query()
    automatic = replace(book.state.queries[QUERY_ID], opened_by="service:datamanagement", check="HAIR_DENSITY_DROP")
    state = replace(book.state, queries={QUERY_ID: automatic})
    assert domain.close_query(state, step("Value confirmed against source."), caller=caller(DATA_MANAGER))
    with pytest.raises(domain.NotTheOpener):
        domain.close_query(state, step(), caller=caller(MONITOR))


def test_a_closed_query_is_not_closed_again_nor_answered_but_can_be_reopened() -> None:
    book = with_query()
    book.record(MONITOR, *domain.close_query(book.state, step(), caller=caller(MONITOR)))
    with pytest.raises(domain.AlreadyClosed):
        domain.close_query(book.state, step(), caller=caller(MONITOR))
    with pytest.raises(domain.NotAwaitingAnswer):
        domain.answer_query(book.state, step())
    assert domain.reopen_query(book.state, step("Source changed."), caller=caller(MONITOR))


def test_an_open_query_cannot_be_reopened() -> None:
    with pytest.raises(domain.NothingToReopen):
        domain.reopen_query(with_query().state, step(), caller=caller(MONITOR))


def test_an_answer_and_a_reopening_need_text() -> None:
    book = with_query()
    with pytest.raises(domain.TextRequired):
        domain.answer_query(book.state, step(None))
    book.record(SITE, *domain.answer_query(book.state, step()))
    with pytest.raises(domain.TextRequired):
        domain.reopen_query(book.state, step("  "), caller=caller(MONITOR))


def test_a_step_on_an_unknown_query_is_refused() -> None:
    with pytest.raises(domain.UnknownQuery) as refused:
        domain.answer_query(with_query().state, QueryStep(query_id=uuid4(), text="?"))
    assert refused.value.kind is Refusal.NOT_FOUND


def test_a_monitor_verifies_the_current_record_once_and_a_correction_leaves_it_changed() -> None:
    book = Casebook((SITE, CONSENT), (SITE, screened()))
    first = book.version("screening")
    [verified] = domain.verify_form(
        book.state, FormVerificationRecord(form="screening", version=first), dictionary=FORMS
    )
    assert verified == FormVerified(form="screening", version=first)
    book.record(MONITOR, verified)
    with pytest.raises(RecordedBefore):
        domain.verify_form(book.state, FormVerificationRecord(form="screening", version=first), dictionary=FORMS)
    book.record(SITE, screened("43", supersedes=first))
    with pytest.raises(domain.StaleVerification) as stale:
        domain.verify_form(book.state, FormVerificationRecord(form="screening", version=first), dictionary=FORMS)
    assert stale.value.kind is Refusal.STALE and stale.value.current_version == book.version("screening")
    assert book.state.verified["screening"] == first != book.version("screening")


def test_a_monitor_verifies_item_by_item_and_the_record_is_verified_once_every_answered_item_is() -> None:
    book = Casebook((SITE, CONSENT), (SITE, screened()))
    version = book.version("screening")
    answered = answered_items(FORMS, "screening", book.state.records["screening"].data.model_dump(mode="json"))
    assert {"weight_kg", "screening_date", "serology.hiv"} <= answered
    first, rest = ["weight_kg", "screening_date"], sorted(answered - {"weight_kg", "screening_date"})
    [step] = domain.verify_form(
        book.state, FormVerificationRecord(form="screening", version=version, items=first), dictionary=FORMS
    )
    assert isinstance(step, FormVerified)
    assert (step.items, step.record_verified) == (("screening_date", "weight_kg"), False)
    book.record(MONITOR, step)
    assert "screening" not in book.state.verified, "two items checked: the record is not verified yet"
    with pytest.raises(domain.UnknownField) as unknown:
        domain.verify_form(
            book.state, FormVerificationRecord(form="screening", version=version, items=["no_such"]), dictionary=FORMS
        )
    assert unknown.value.field == "items"
    with pytest.raises(RecordedBefore):
        domain.verify_form(
            book.state, FormVerificationRecord(form="screening", version=version, items=["weight_kg"]), dictionary=FORMS
        )
    [last] = domain.verify_form(
        book.state, FormVerificationRecord(form="screening", version=version, items=rest), dictionary=FORMS
    )
    assert isinstance(last, FormVerified) and last.record_verified
    book.record(MONITOR, last)
    assert book.state.verified["screening"] == version


def test_items_verified_on_a_record_a_correction_replaced_do_not_count_for_the_new_one() -> None:
    book = Casebook((SITE, CONSENT), (SITE, screened()))
    first = book.version("screening")
    [step] = domain.verify_form(
        book.state, FormVerificationRecord(form="screening", version=first, items=["weight_kg"]), dictionary=FORMS
    )
    book.record(MONITOR, step)
    book.record(SITE, screened("43", supersedes=first))
    current = book.version("screening")
    [again] = domain.verify_form(
        book.state, FormVerificationRecord(form="screening", version=current, items=["weight_kg"]), dictionary=FORMS
    )
    assert isinstance(again, FormVerified) and again.items == ("weight_kg",) and not again.record_verified


def test_verifying_a_form_not_recorded_is_refused() -> None:
    with pytest.raises(domain.FormNotRecorded):
        domain.verify_form(
            Casebook((SITE, CONSENT)).state, FormVerificationRecord(form="screening", version=uuid4()), dictionary=FORMS
        )


def finding(form: str = "screening", check: str = "RANDOMIZED_INELIGIBLE") -> domain.Finding:
    return domain.Finding(check, form, None, "text", {})


def reconcile(book: Casebook, *found: domain.Finding) -> list[DomainEvent]:
    return domain.reconcile(
        book.state, found, checked=frozenset({"RANDOMIZED_INELIGIBLE"}), query_ids=lambda f: uuid5(QUERY_ID, f.form)
    )


def test_an_edit_check_opens_one_query_per_finding_and_closes_it_when_the_finding_is_gone() -> None:
    book = Casebook((SITE, CONSENT), (SITE, screened()))
    [opened] = reconcile(book, finding())
    assert isinstance(opened, QueryOpened) and opened.check == "RANDOMIZED_INELIGIBLE"
    book.record("service:datamanagement", opened)
    assert reconcile(book, finding()) == []
    [closed] = reconcile(book)
    assert closed == QueryClosed(query_id=opened.query_id, text=domain.RESOLVED)


def test_a_finding_a_data_manager_closed_is_raised_again_only_on_a_new_record() -> None:
    book = Casebook((SITE, CONSENT), (SITE, screened()))
    [opened] = reconcile(book, finding())
    assert isinstance(opened, QueryOpened)
    book.record("service:datamanagement", opened)
    book.record(DATA_MANAGER, QueryClosed(query_id=opened.query_id, text="confirmed"))
    assert reconcile(book, finding()) == []
    book.record(SITE, screened("43", supersedes=book.version("screening")))
    [again] = reconcile(book, finding())
    assert isinstance(again, QueryOpened) and again.form_version == book.version("screening")


def test_a_finding_of_what_the_protocol_forbids_records_its_deviation_once_with_its_first_query() -> None:
    book = Casebook((SITE, CONSENT), (SITE, screened()))
    forbidden = replace(finding(), deviation=True, occurred_on=date(2026, 2, 1))
    deviation, opened = reconcile(book, forbidden)
    assert isinstance(deviation, ProtocolDeviationRecorded) and isinstance(opened, QueryOpened)
    assert (deviation.code, deviation.occurred_on, deviation.related_event_id) == (
        "RANDOMIZED_INELIGIBLE",
        date(2026, 2, 1),
        book.version("screening"),
    )
    assert deviation.deviation_id == uuid5(opened.query_id, "deviation"), "a redelivered trigger finds the same"
    book.record("service:datamanagement", deviation)
    book.record("service:datamanagement", opened)
    book.record(DATA_MANAGER, QueryClosed(query_id=opened.query_id, text="confirmed"))
    book.record(SITE, screened("43", supersedes=book.version("screening")))
    [again] = reconcile(book, forbidden)
    assert isinstance(again, QueryOpened), "a new record is asked about again; what happened is recorded once"


def test_queries_of_checks_not_run_are_left_alone() -> None:
    book = Casebook((SITE, CONSENT), (SITE, screened()))
    [opened] = reconcile(book, finding())
    assert isinstance(opened, QueryOpened)
    book.record("service:datamanagement", opened.model_copy(update={"check": "ANOTHER_CHECK"}))
    assert reconcile(book) == []


ACTORS = st.sampled_from([MONITOR, OTHER_MONITOR, SITE, DATA_MANAGER])
ACTIONS = st.lists(
    st.tuples(st.sampled_from(["answer", "close", "reopen", "correct", "verify", "verify_old"]), ACTORS), max_size=30
)


@settings(max_examples=300, deadline=None)
@given(actions=ACTIONS, automatic=st.booleans())
def test_no_sequence_of_actions_closes_a_query_without_its_opener_or_verifies_a_changed_form(
    actions: list[tuple[str, str]], automatic: bool
) -> None:
    book = with_query()
    if automatic:
        # The same query, raised by an edit check instead of a person.
        opened = book.history[-1]
        raised = opened.data.model_copy(update={"check": "HAIR_DENSITY_DROP"})
        book.history[-1] = by("service:datamanagement", raised, opened.sequence)
    opener = book.state.queries[QUERY_ID].opened_by
    versions = [book.version("screening")]
    for action, actor in actions:
        state = book.state
        try:
            match action:
                case "answer":
                    decided = domain.answer_query(state, step())
                case "close":
                    decided = domain.close_query(state, step(), caller=caller(actor))
                case "reopen":
                    decided = domain.reopen_query(state, step(), caller=caller(actor))
                case "correct":
                    decided = [screened(str(40 + len(versions)), supersedes=versions[-1])]
                case "verify":
                    decided = domain.verify_form(
                        state, FormVerificationRecord(form="screening", version=versions[-1]), dictionary=FORMS
                    )
                case _:
                    decided = domain.verify_form(
                        state, FormVerificationRecord(form="screening", version=versions[0]), dictionary=FORMS
                    )
        except (RuleViolation, RecordedBefore):
            continue
        [recorded] = book.record(actor, *decided)
        if action == "correct":
            versions.append(recorded.envelope.id)
        if isinstance(recorded.data, QueryClosed):
            assert actor == opener or (automatic and actor == DATA_MANAGER)
        if isinstance(recorded.data, FormVerified):
            assert recorded.data.version == book.version("screening"), "only the current record is ever verified"
    final = book.state
    verified = final.verified.get("screening")
    assert verified is None or verified in versions
    if verified is not None and versions.index(verified) < len(versions) - 1:
        assert final.records["screening"].version != verified, "a later correction shows as changed"


def test_a_casebook_is_locked_through_its_last_record_once_every_query_is_closed() -> None:
    with pytest.raises(domain.FormNotRecorded):
        locks.lock_casebook(Casebook().state, CasebookLock())
    book = with_query()
    with pytest.raises(locks.QueriesOpen) as refused:
        locks.lock_casebook(book.state, CasebookLock())
    assert "screening" in refused.value.detail
    book.record(MONITOR, *domain.close_query(book.state, step(), caller=caller(MONITOR)))
    [lock] = locks.lock_casebook(book.state, CasebookLock())
    assert lock == CasebookLocked(through_sequence=book.history[-1].sequence)
    book.record(DATA_MANAGER, lock)
    assert locked(book.history) == lock
    with pytest.raises(locks.AlreadyLocked):
        locks.lock_casebook(book.state, CasebookLock())


def test_a_locked_casebook_refuses_entry_until_unlocked_with_a_reason() -> None:
    book = Casebook((SITE, CONSENT), (SITE, screened()))
    with pytest.raises(locks.NotLocked):
        locks.unlock_casebook(book.state, CasebookUnlock(reason="nothing to open here"), database_lock=None)
    book.record(DATA_MANAGER, *locks.lock_casebook(book.state, CasebookLock()))
    with pytest.raises(CasebookIsLocked) as refused:
        refuse_if_locked(book.history)
    assert refused.value.kind is Refusal.LOCKED
    with pytest.raises(ReasonRequired):
        locks.unlock_casebook(book.state, CasebookUnlock.model_construct(reason="  "), database_lock=None)
    book.record(
        DATA_MANAGER,
        *locks.unlock_casebook(book.state, CasebookUnlock(reason="a query after the lock"), database_lock=None),
    )
    refuse_if_locked(book.history)
    assert locked(book.history) is None


def subject_record(subject: str, *facts: DomainEvent) -> list[RecordedEvent]:
    meta = replace(META, subject=subject, actor=DATA_MANAGER)
    time = datetime(2026, 1, 10, 9, tzinfo=UTC)
    return [RecordedEvent(0, "", EventEnvelope.wrap(f, meta, event_id=uuid4(), time=time)) for f in facts]


def numbered(*histories: list[RecordedEvent]) -> list[RecordedEvent]:
    """Interleaved as the stream holds them, numbered in order."""
    merged = [e for history in histories for e in history]
    return [replace(e, sequence=i) for i, e in enumerate(merged, start=1)]


def test_the_database_is_locked_once_and_only_when_every_casebook_is() -> None:
    lock = CasebookLocked(through_sequence=2)
    first = subject_record("NFH-001", CONSENT, lock)
    second = subject_record("NFH-002", CONSENT)
    with pytest.raises(locks.CasebooksOpen) as refused:
        locks.lock_database(numbered(first, second))
    assert "NFH-002" in refused.value.detail and "NFH-001" not in refused.value.detail
    record = numbered(first, subject_record("NFH-002", CONSENT, lock))
    [frozen] = locks.lock_database(record)
    assert frozen == DatabaseLocked(through_sequence=4, subjects=2)
    with pytest.raises(DatabaseIsLocked):
        locks.lock_database([*record, by(DATA_MANAGER, frozen, 5)])
    with pytest.raises(locks.CasebooksOpen):
        locks.lock_database([])


def test_no_casebook_is_unlocked_once_the_database_is_locked() -> None:
    book = Casebook((SITE, CONSENT))
    book.record(DATA_MANAGER, *locks.lock_casebook(book.state, CasebookLock()))
    with pytest.raises(DatabaseIsLocked):
        locks.unlock_casebook(
            book.state,
            CasebookUnlock(reason="a late query on M6"),
            database_lock=DatabaseLocked(through_sequence=9, subjects=1),
        )

"""Pure rules of locking: a subject's casebook (once its queries are closed), and the database for analysis (once
every casebook is locked). A locked casebook takes nothing but safety information (`shared.contracts.casebook`)."""

from collections.abc import Sequence

from services.datamanagement.domain import Casebook, FormNotRecorded, replay
from shared.contracts.events import CasebookLocked, CasebookUnlocked, DatabaseLocked, DomainEvent, RecordedEvent
from shared.contracts.forms import CasebookLock, CasebookUnlock
from shared.contracts.rules import DatabaseIsLocked, ReasonRequired, RuleViolation


class AlreadyLocked(RuleViolation):
    rule, title = "casebook.locked_already", "The casebook is locked already"


class NotLocked(RuleViolation):
    rule, title = "casebook.not_locked", "The casebook is not locked"


class QueriesOpen(RuleViolation):
    rule, title = "casebook.queries_closed", "A casebook is locked with every query closed"


class CasebooksOpen(RuleViolation):
    rule, title = "database.casebooks_locked", "The database is locked once every casebook is"


def lock_casebook(book: Casebook, form: CasebookLock) -> list[DomainEvent]:
    """Locked through the subject's last record, once every query on it is closed."""
    if book.locked:
        raise AlreadyLocked("the subject's casebook is locked already")
    if not book.records:
        raise FormNotRecorded("the subject has no form recorded: nothing to lock", field="subject")
    still_open = sorted(q.form for q in book.queries.values() if q.is_open)
    if still_open:
        raise QueriesOpen(f"queries are open on {', '.join(still_open)}: close them before locking")
    return [CasebookLocked(through_sequence=book.last_sequence)]


def unlock_casebook(book: Casebook, form: CasebookUnlock, *, database_lock: DatabaseLocked | None) -> list[DomainEvent]:
    if database_lock is not None:
        raise DatabaseIsLocked(f"the database is locked for analysis through {database_lock.through_sequence}")
    if not book.locked:
        raise NotLocked("the subject's casebook is not locked")
    if not form.reason.strip():
        raise ReasonRequired("say why the locked data must be opened again", field="reason")
    return [CasebookUnlocked()]


def lock_database(record: Sequence[RecordedEvent]) -> list[DomainEvent]:
    """Decided on the whole record: once, and only when the casebook of every subject with a form is locked."""
    histories: dict[str, list[RecordedEvent]] = {}
    for event in record:
        if isinstance(event.data, DatabaseLocked):
            raise DatabaseIsLocked(f"the database is locked already, through {event.data.through_sequence}")
        if event.envelope.siteid is not None:
            histories.setdefault(event.envelope.subject, []).append(event)
    casebooks = {subject: replay(events) for subject, events in histories.items()}
    subjects = sorted(subject for subject, book in casebooks.items() if book.records)
    still_open = [subject for subject in subjects if not casebooks[subject].locked]
    if not subjects or still_open:
        shown = ", ".join(still_open[:10]) + (" …" if len(still_open) > 10 else "")
        raise CasebooksOpen(f"{len(still_open)} casebooks are not locked: {shown or 'no casebook yet'}")
    return [DatabaseLocked(through_sequence=record[-1].sequence, subjects=len(subjects))]

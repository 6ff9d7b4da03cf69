"""The states the read models keep, each written once here: the projections write them, the views and reports
filter by them, and no SQL spells one as a bare literal."""

from enum import StrEnum


class SubjectState(StrEnum):
    """Where a subject stands: the `subjects` read model's `state`, written by its projection, read by the gateway
    and the reports."""

    CONSENTED = "consented"
    ELIGIBLE = "eligible"
    SCREEN_FAILED = "screen_failed"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    CONSENT_DECLINED = "consent_declined"
    RANDOMIZED = "randomized"
    TREATED = "treated"
    WITHDRAWN = "withdrawn"
    COMPLETED = "completed"
    DIED = "died"


# Where a subject's part in the trial is over: its casebook is signed then.
PARTICIPATION_ENDED = frozenset({SubjectState.COMPLETED, SubjectState.WITHDRAWN, SubjectState.DIED})
# And where it is over or never began: what is not recorded by then will not be.
NOT_TAKING_PART = PARTICIPATION_ENDED | {SubjectState.CONSENT_WITHDRAWN, SubjectState.CONSENT_DECLINED}


class VisitStatus(StrEnum):
    """A follow-up visit in the `visits` read model."""

    SCHEDULED = "scheduled"
    COMPLETED = "completed"
    MISSED = "missed"
    # After a withdrawal or a death: neither scheduled nor missed (`not_expected_reason` says which).
    NOT_EXPECTED = "not_expected"


class QueryState(StrEnum):
    """Where a query stands: the data management service decides it, the read model keeps it."""

    OPEN = "open"
    ANSWERED = "answered"
    CLOSED = "closed"
    REOPENED = "reopened"

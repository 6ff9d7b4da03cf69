"""Every domain event of the trial, one pydantic model each. Names are past-tense facts."""

from datetime import date

from pydantic import Field

from shared.events.envelope import DomainEvent, register


@register
class ConsentRecorded(DomainEvent):
    """Informed consent signed (IN09); nothing trial-specific may happen to the subject before it."""

    event_type = "ConsentRecorded"

    consent_form_version: str = Field(min_length=1, max_length=20)
    signed_on: date
    obtained_by: str = Field(min_length=1, max_length=64, description="staff identifier, not a name")
    signed_by_subject: bool
    signed_by_representative: bool

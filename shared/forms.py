"""The forms site apps post, validated the same way by the gateway and by the services."""

from datetime import date

from pydantic import BaseModel, ConfigDict, Field


class ConsentForm(BaseModel):
    """Informed consent as signed (IN09). Identifies staff by code, never by name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    consent_form_version: str = Field(min_length=1, max_length=20, examples=["1.0"])
    signed_on: date = Field(description="date the consent form was signed; not after today")
    obtained_by: str = Field(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$", description="staff code of who obtained consent"
    )
    signed_by_subject: bool
    signed_by_representative: bool = Field(
        False, description="a legally authorised representative signed (with or instead of the subject)"
    )

"""Scalp photographs as source documents: what a site uploads for a visit, and what the record keeps of it.

The image itself is kept outside the event log, in the JetStream object store (`BUCKET`, replicated with the
cluster like the record), under its SHA-256: the fact that records it names the visit, the standard view (the data
dictionary's `photograph_view` code list) and that hash, so the endpoint can be verified against its source."""

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.forms import VISIT_CODE_PATTERN, EndpointAssessmentForm

BUCKET = "scalp-photographs"
# What a site may upload: a JPEG or PNG of at most 20 MB, of at most 50 megapixels (a phone camera's is 12 to 48):
# more is refused before it is decoded in full (a decompression bomb).
MAX_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 50_000_000
MEDIA_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG"}
SHA256_PATTERN = r"^[0-9a-f]{64}$"
# The visits a photograph is taken at: the surgery (before it) and each follow-up visit.
PHOTOGRAPH_VISITS = ("D0",)


class PhotographRecord(BaseModel):
    """A photograph the gateway has cleaned and stored, as it sends it to the visits service to record."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    visit: str = Field(pattern=VISIT_CODE_PATTERN)
    view: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="the standard view (code list photograph_view)")
    sha256: str = Field(pattern=SHA256_PATTERN, description="of the image as stored (metadata stripped)")
    media_type: str = Field(pattern=r"^image/(jpeg|png)$")
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    size_bytes: int = Field(gt=0, le=MAX_BYTES)


def thumbnail_name(sha256: str) -> str:
    """The stored thumbnail of an image, beside it in the bucket."""
    return f"{sha256}.thumbnail"


class EndpointAssessmentRecord(EndpointAssessmentForm):
    """The assessment as the gateway sends it to the visits service: the visit is in the path."""

    visit: str = Field(pattern=VISIT_CODE_PATTERN)

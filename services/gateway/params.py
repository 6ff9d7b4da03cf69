"""The path and header parameters routes share, each with its pattern: refused with 422 before anything runs."""

from typing import Annotated

from fastapi import Header, Path

from services.gateway.idempotency import KEY_PATTERN
from shared.contracts.protocol import SITE_CODE_PATTERN, SUBJECT_ID_PATTERN

SitePath = Annotated[str, Path(pattern=SITE_CODE_PATTERN, examples=["NFH"], description="site code")]
SubjectPath = Annotated[str, Path(pattern=SUBJECT_ID_PATTERN, examples=["NFH-001"], description="subject id")]
VisitPath = Annotated[str, Path(pattern=r"^[A-Z][A-Z0-9]{1,4}$", examples=["M6"], description="visit code")]
IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        pattern=KEY_PATTERN,
        description="unique per intended request; a retry with the same key returns the first answer",
    ),
]

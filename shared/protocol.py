"""The protocol definition: trial facts that change by amendment (a new version), never by code."""

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

SITE_CODE_PATTERN = r"^[A-Z][A-Z0-9]{1,7}$"
SUBJECT_ID_PATTERN = r"^[A-Z][A-Z0-9]{1,7}-[0-9]{3}$"

SiteCode = Annotated[str, Field(pattern=SITE_CODE_PATTERN, examples=["NFH"])]
SubjectId = Annotated[str, Field(pattern=SUBJECT_ID_PATTERN, examples=["NFH-001"])]


class SiteStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    CLOSED = "closed"


class Arm(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    code: str = Field(pattern=r"^[A-Z][A-Z_]{1,15}$")
    name: str


class Site(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    code: SiteCode
    name: str
    status: SiteStatus


class ProtocolDefinition(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    trial_id: str = Field(pattern=r"^NCT[0-9]{8}$")
    version: str = Field(min_length=1)
    title: str
    arms: tuple[Arm, ...] = Field(min_length=2)
    enrollment_cap: int = Field(gt=0)
    sites: tuple[Site, ...] = Field(min_length=1)
    consent_form_versions: tuple[str, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _codes_are_unique(self) -> "ProtocolDefinition":
        for name, codes in (("sites", [s.code for s in self.sites]), ("arms", [a.code for a in self.arms])):
            if len(codes) != len(set(codes)):
                raise ValueError(f"{name}: codes must be unique, got {codes}")
        return self

    def site(self, code: str) -> Site | None:
        return next((s for s in self.sites if s.code == code), None)


class InvalidProtocolDefinition(Exception):
    """The definition file cannot run the trial; the message names the field and the rule."""


def load_protocol(path: Path) -> ProtocolDefinition:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return ProtocolDefinition.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()
        )
        raise InvalidProtocolDefinition(f"{path}: {problems}") from exc
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidProtocolDefinition(f"{path}: {exc}") from exc


@lru_cache(maxsize=8)
def cached_protocol(path: Path) -> ProtocolDefinition:
    return load_protocol(path)

"""Sending a command to a service over NATS request/reply, and the POST flow every form shares."""

from decimal import Decimal
from typing import TypeVar

import nats.errors
from fastapi import Request
from fastapi.responses import JSONResponse, Response
from nats.aio.client import Client
from pydantic import BaseModel, Field, ValidationError

from services.gateway.auth import Principal
from services.gateway.errors import ProblemError, rejection_problem, service_unavailable
from services.gateway.idempotency import IdempotencyKeys, StoredResponse, command_id, request_hash
from services.gateway.middleware import note_time, timed
from shared.contracts.attestation import CommandSigner
from shared.contracts.commands import (
    ActorContext,
    Command,
    CommandContext,
    CommandReply,
    ExportReply,
    ExportRequest,
    TrialCommand,
)
from shared.contracts.events import CriterionResult
from shared.contracts.forms import SeriousnessCriterion
from shared.contracts.protocol import SiteStatus

A = TypeVar("A", bound=BaseModel)


class CommandBus:
    """Commands to the services, each signed for the caller (`shared.contracts.attestation`): the services act only
    on what the gateway vouched for."""

    def __init__(self, nc: Client, *, timeout: float, signer: CommandSigner) -> None:
        self._nc = nc
        self._signer = signer
        self.timeout = timeout

    async def send(self, subject: str, command: BaseModel, *, caller: Principal, site: str | None) -> CommandReply:
        reply = await self._request(subject, command, CommandReply, caller=caller, site=site)
        if reply.unavailable:
            raise service_unavailable("the service could not complete the command; retry with the same key")
        return reply

    async def export(self, subject: str, request: ExportRequest, *, caller: Principal) -> ExportReply:
        return await self._request(subject, request, ExportReply, caller=caller, site=None)

    async def _request(
        self, subject: str, message: BaseModel, answer: type[A], *, caller: Principal, site: str | None
    ) -> A:
        service = subject.split(".")[2]
        payload = message.model_dump_json().encode()
        headers = self._signer.headers(
            subject, payload, actor=caller.actor, role=caller.role, actor_site=caller.site, target_site=site
        )
        try:
            msg = await self._nc.request(subject, payload, timeout=self.timeout, headers=headers)
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError) as exc:
            raise service_unavailable(f"no answer from {service} in time; retry with the same key") from exc
        except nats.errors.Error as exc:
            raise service_unavailable("the message bus is unreachable; retry with the same key") from exc
        try:
            return answer.model_validate_json(msg.data)
        except ValidationError as exc:
            raise service_unavailable(f"unreadable answer from {service}") from exc


class RecordedResponse(BaseModel):
    """201: the fact was recorded (or had been, for a retried key)."""

    event_id: str
    event_ids: list[str]
    site: str | None = Field(description="the subject's site; null for a fact about the whole trial")
    subject: str = Field(description="the trial subject, or the trial for a fact about the whole trial")
    stream_sequence: int = Field(description="position in the event stream; read models reach it shortly")


class RandomizationRecorded(RecordedResponse):
    """201: the subject's allocation. Block sizes and list positions are never disclosed."""

    arm: str = Field(description="FG_HT or HT")
    randomization_number: int = Field(description="trial-wide, sequential")
    stratum: str = Field(description="the stratum (site) the allocation came from")


class AdverseEventRecorded(RecordedResponse):
    """201: the adverse event's id (for follow-ups) and whether it is serious (an SAE alert follows)."""

    ae_id: str
    serious: bool
    derived_seriousness: list[SeriousnessCriterion] = Field(
        default_factory=list,
        description="ICH E2A criteria the system added from the form (hospitalized ⇒ hospitalization_or_prolongation)",
    )
    site_status: SiteStatus | None = Field(
        None, description="the site's status: safety information from a suspended site is taken, and flagged here"
    )
    casebook_locked: bool = Field(
        False, description="the subject's casebook is locked: safety information is taken, and flagged here"
    )


class LogEntryRecorded(RecordedResponse):
    """201: the log's entry (a concomitant medication, a medical history entry): its id, which a correction names."""

    entry: str


class PhotographRecorded(RecordedResponse):
    """201: the photograph as it is kept: its SHA-256 (of the stored image, without the upload's metadata)."""

    sha256: str
    width: int
    height: int
    size_bytes: int


class AlertAcknowledged(RecordedResponse):
    """201: the alert is acknowledged (or already was: the first acknowledgement is returned)."""

    alert_id: str


class QueryRecorded(RecordedResponse):
    """201: the query's step is recorded; `query_id` names the query for its answer, close or re-open."""

    query_id: str


class FormVerificationRecorded(RecordedResponse):
    """201: the form's record is verified against source (or already was: the first verification is returned)."""

    form: str
    version: str


class SignatureRecorded(RecordedResponse):
    """201: the signature, as it will be shown (or the one standing, if nothing it covers changed since)."""

    signature_id: str
    kind: str
    printed_name: str
    signed_at_site: str = Field(description="the instant of signing in the site's time zone, with its offset")
    authenticated_at: str = Field(description="the sign-in the signature rests on (the token's auth_time), UTC")


class ScreeningRecorded(RecordedResponse):
    """201: eligibility evaluated on every criterion, each with its outcome, value and rule."""

    eligible: bool
    bmi: Decimal
    screening_number: int = Field(description="1 for the first screening, 2+ for re-screens")
    criteria: list[CriterionResult]


async def submit_command(
    request: Request,
    *,
    principal: Principal,
    idempotency_key: str,
    nats_subject: str,
    form: BaseModel,
    answer: type[RecordedResponse] = RecordedResponse,
    site: str | None = None,
    subject: str | None = None,
) -> Response:
    """Claim the idempotency key, send the command, store and return the answer."""
    keys: IdempotencyKeys = request.app.state.idempotency
    bus: CommandBus = request.app.state.bus
    fingerprint = request_hash(request.method, request.url.path, await request.body())
    with timed(request, "claim"):
        stored = await keys.claim(principal.scope, idempotency_key, fingerprint, wait=bus.timeout + 1)
    if stored is not None:
        return Response(stored.body, status_code=stored.status_code, media_type=_media_type(stored.status_code))
    actor = {
        "command_id": command_id(principal.scope, idempotency_key),
        "correlation_id": request.state.correlation_id,
        "actor": principal.actor,
        "role": principal.role,
        "actor_site": principal.site,
        "token_id": principal.token_id,
        "received_at": request.app.state.versions.clock(),  # the gateway's clock (the services judge by it)
        "authenticated_at": principal.authenticated_at,
        "printed_name": principal.name,
    }
    message: BaseModel = (
        Command(context=CommandContext(**actor, site=site, subject=subject), form=form)
        if site is not None and subject is not None
        else TrialCommand(context=ActorContext(**actor), form=form)
    )
    try:
        with timed(request, "command"):
            reply = await bus.send(nats_subject, message, caller=principal, site=site)
    except ProblemError:
        await keys.release(principal.scope, idempotency_key)
        raise
    if reply.decided_ms is not None:
        note_time(request, "service", reply.decided_ms)
    if reply.rejection is not None:
        refused = rejection_problem(reply.rejection)
        problem = refused.problem.model_copy(
            update={"instance": request.url.path, "correlation_id": request.state.correlation_id}
        )
        response: Response = JSONResponse(
            problem.model_dump(exclude_none=True),
            status_code=problem.status,
            media_type="application/problem+json",
            headers=refused.headers,
        )
    else:
        assert reply.last_sequence is not None and reply.event_ids
        body = answer.model_validate(
            {
                "event_id": str(reply.event_ids[-1]),
                "event_ids": [str(e) for e in reply.event_ids],
                "site": site,
                "subject": subject,
                "stream_sequence": reply.last_sequence,
                **reply.result,
            }
        )
        response = Response(body.model_dump_json(), status_code=201, media_type="application/json")
    with timed(request, "complete"):
        if response.status_code == 401:
            # Refused for who is asking (a sign-in too old to sign with), not for what: nothing was recorded, and the
            # same request after a fresh sign-in must be decided afresh, under the same key.
            await keys.release(principal.scope, idempotency_key)
        else:
            await keys.complete(
                principal.scope, idempotency_key, StoredResponse(response.status_code, bytes(response.body))
            )
    return response


def _media_type(status: int) -> str:
    return "application/json" if status < 400 else "application/problem+json"

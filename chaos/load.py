"""A mixed write load through the gateway, as sites post it: consent, screening, randomization, adverse events.

Each client follows subjects through the trial. A request is retried with the same Idempotency-Key
until it gets a final answer (what a site app does when the network, the gateway or a service is
down), and every answer is kept for the checks afterwards.
"""

import asyncio
import collections
import itertools
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from devstack.examples import CONSENT, ELIGIBLE, serious_adverse_event
from services.gateway.auth import Role, issue_token

# Answers that mean "not now": the same request is sent again with the same key.
RETRIED_STATUSES = {502, 503, 504}
IN_FLIGHT_RULE = "idempotency.in_flight"
MAX_SERIAL = 999  # subject ids are SITE-NNN


class NoFinalAnswer(Exception):
    """A request kept failing past its deadline: something is stuck."""


ISSUER = "trial-gateway"


@dataclass(frozen=True)
class Answer:
    form: str
    site: str
    subject: str
    path: str
    request: dict[str, Any]
    key: str
    actor: str
    status: int
    body: dict[str, Any]
    attempts: int
    sent_at: float  # seconds since the load started
    answered_at: float

    @property
    def recorded(self) -> bool:
        return self.status == 201


@dataclass
class Load:
    gateway_url: str
    signing_keys: dict[str, str]
    sites: tuple[str, ...]
    clients: int = 8
    serious_every: int = 3  # every third subject has an SAE, the others a non-serious AE
    deadline_seconds: float = 120.0  # one request's retries, across a component's restart
    answers: list[Answer] = field(default_factory=list)
    transport_errors: int = 0
    # Answers that meant "not now" and were retried, by status and whether they said when to come back.
    not_now: collections.Counter[str] = field(default_factory=collections.Counter)
    started: float = field(default_factory=time.monotonic)
    _numbers: "itertools.count[int]" = field(default_factory=lambda: itertools.count(1), init=False, repr=False)
    _randomization_open: bool = field(default=True, init=False)

    def actor(self, site: str) -> str:
        return f"investigator-{site.lower()}"

    def token(self, site: str) -> str:
        return issue_token(
            self.signing_keys,
            issuer=ISSUER,
            role=Role.INVESTIGATOR,
            site=site,
            hours=2,
            actor=self.actor(site),
        )

    async def run(self, stop: asyncio.Event, on_answer: Callable[[Answer], None] | None = None) -> None:
        """Until `stop` is set: each client takes the next subject through the trial, then another."""
        tokens = {site: self.token(site) for site in self.sites}
        async with httpx.AsyncClient(base_url=self.gateway_url, timeout=10) as http:
            await asyncio.gather(*(self._client(http, tokens, stop, on_answer) for _ in range(self.clients)))

    async def _client(
        self,
        http: httpx.AsyncClient,
        tokens: dict[str, str],
        stop: asyncio.Event,
        on_answer: Callable[[Answer], None] | None,
    ) -> None:
        while not stop.is_set():
            number = next(self._numbers)
            site, serial = self.sites[number % len(self.sites)], number // len(self.sites) + 1
            if serial > MAX_SERIAL:
                return  # every subject number of every site is taken
            subject = f"{site}-{serial:03d}"
            for form, route, body in self.steps(serious=serial % self.serious_every == 0):
                path = f"/v1/sites/{site}/subjects/{subject}/{route}"
                answer = await self.send(http, tokens[site], form, site, subject, path, body)
                self.answers.append(answer)
                if on_answer is not None:
                    on_answer(answer)
                if answer.body.get("rule") == "enrollment.cap":
                    self._randomization_open = False  # the trial is fully enrolled; adverse events go on
                if not answer.recorded and form in ("consent", "screening"):
                    break

    def steps(self, *, serious: bool) -> list[tuple[str, str, dict[str, Any]]]:
        """A subject's way through the trial, by form and route: consent, screening, randomization while the trial
        enrolls, and an adverse event (serious, or a grade 1 that recovered)."""
        steps: list[tuple[str, str, dict[str, Any]]] = [
            ("consent", "consent", CONSENT),
            ("screening", "screening", ELIGIBLE),
        ]
        if self._randomization_open:
            steps.append(("randomization", "randomization", {}))
        ae = (
            serious_adverse_event()
            if serious
            else serious_adverse_event(grade=1, seriousness=[], outcome="recovered", action_taken="treatment_given")
        )
        steps.append(("sae" if serious else "adverse_event", "adverse-events", ae))
        return steps

    async def send(
        self, http: httpx.AsyncClient, token: str, form: str, site: str, subject: str, path: str, body: dict[str, Any]
    ) -> Answer:
        key = f"{form}-{uuid.uuid4()}"
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key}
        sent = time.monotonic()
        for attempt in itertools.count(1):
            if time.monotonic() - sent > self.deadline_seconds:
                raise NoFinalAnswer(f"{form} {path}: no final answer in {self.deadline_seconds:.0f}s")
            try:
                response = await http.post(path, json=body, headers=headers)
            except httpx.TransportError:
                self.transport_errors += 1
                await asyncio.sleep(min(0.1 * attempt, 1.0))
                continue
            answer: dict[str, Any] = json.loads(response.content) if response.content else {}
            if response.status_code in RETRIED_STATUSES or answer.get("rule") == IN_FLIGHT_RULE:
                said = "with Retry-After" if "retry-after" in response.headers else "without Retry-After"
                self.not_now[f"{response.status_code} {said}"] += 1
                await asyncio.sleep(min(0.1 * attempt, 1.0))
                continue
            return Answer(
                form,
                site,
                subject,
                path,
                body,
                key,
                self.actor(site),
                response.status_code,
                answer,
                attempt,
                sent - self.started,
                time.monotonic() - self.started,
            )
        raise AssertionError("unreachable")

"""`/v1/safety/alerts`: the SAE alerts for safety officers, and their acknowledgement."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from services.gateway.access import allowed
from services.gateway.auth import Principal, Right
from services.gateway.command_bus import AlertAcknowledged, submit_command
from services.gateway.consistency import read_after
from services.gateway.errors import ProblemError, problem_responses
from services.gateway.params import IdempotencyKey
from shared.contracts.commands import ACKNOWLEDGE_ALERT
from shared.contracts.forms import AlertAcknowledgement
from shared.readmodels.alerts import AlertState, AlertView, find_alerts


def safety_router() -> APIRouter:
    """The safety team's alerts: open ones, one by one, and their acknowledgement."""
    router = APIRouter()

    @router.post(
        "/v1/safety/alerts/{alert}/acknowledgement",
        status_code=201,
        tags=["safety"],
        operation_id="acknowledge_alert",
        summary="Acknowledge an SAE alert (safety officers); acknowledging twice returns the first",
        response_model=AlertAcknowledged,
        responses=problem_responses(401, 403, 404, 422, 503),
    )
    async def acknowledge_alert(
        request: Request,
        alert: UUID,
        caller: Annotated[Principal, allowed(Right.ACKNOWLEDGE_ALERTS)],
        key: IdempotencyKey,
    ) -> Response:
        return await submit_command(
            request,
            principal=caller,
            idempotency_key=key,
            nats_subject=ACKNOWLEDGE_ALERT,
            form=AlertAcknowledgement(alert_id=alert),
            answer=AlertAcknowledged,
        )

    @router.get(
        "/v1/safety/alerts",
        tags=["safety"],
        operation_id="list_alerts",
        summary="SAE alerts (safety officers), oldest first, with the 24-hour reporting deadline",
        responses=problem_responses(401, 403, 422, 503),
        dependencies=[Depends(read_after)],
    )
    async def list_alerts(
        request: Request,
        caller: Annotated[Principal, allowed(Right.READ_ADVERSE_EVENTS)],
        state: AlertState = AlertState.OPEN,
    ) -> list[AlertView]:
        return await find_alerts(request.app.state.pool, state)

    @router.get(
        "/v1/safety/alerts/{alert}",
        tags=["safety"],
        operation_id="get_alert",
        summary="One SAE alert and whether it is acknowledged",
        responses=problem_responses(401, 403, 404, 422),
    )
    async def get_alert(
        request: Request, alert: UUID, caller: Annotated[Principal, allowed(Right.READ_ADVERSE_EVENTS)]
    ) -> AlertView:
        found = await find_alerts(request.app.state.pool, AlertState.ALL, alert_id=alert)
        if not found:
            raise ProblemError(404, "alert-not-found", "Alert not found", f"no alert {alert} (yet)")
        return found[0]

    return router

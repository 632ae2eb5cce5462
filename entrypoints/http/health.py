"""Health and metrics: for load balancers, orchestrators and Prometheus."""

import hmac
from typing import Any

from litestar import Request, Response, get
from litestar.openapi import ResponseSpec

from application.errors import InvalidToken, NotAuthenticated
from entrypoints.http.dependencies import bearer_token, services_of
from entrypoints.http.errors import responses
from entrypoints.http.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from entrypoints.http.schemas import (
    HealthResponse,
    LivenessResponse,
)


@get(
    "/health",
    tags=["health"],
    responses={
        503: ResponseSpec(
            data_container=HealthResponse,
            description="The database is unreachable",
            generate_examples=False,
        )
    },
)
async def health(request: Request[Any, Any, Any]) -> Response[HealthResponse]:
    """200 when a query round-trips to the database, 503 when it does not."""
    if await services_of(request).database_reachable():
        return Response(HealthResponse(status="healthy", database="ok"))
    return Response(
        HealthResponse(status="unhealthy", database="unreachable"),
        status_code=503,
        headers={"Retry-After": "5"},
    )


@get("/health/live", tags=["health"])
async def liveness() -> LivenessResponse:
    """200 while the process serves requests; never touches the database (for orchestrators
    that restart a process, which would not cure a database outage)."""
    return LivenessResponse(status="alive")


@get(
    "/metrics",
    tags=["health"],
    media_type=METRICS_CONTENT_TYPE,
    responses=responses(401),
    description="Prometheus text format. Needs `Authorization: Bearer <METRICS_TOKEN>`; without "
    "METRICS_TOKEN the route does not exist.",
)
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    # Only routed when METRICS_TOKEN is set (see create_app).
    expected: str = request.app.state.metrics_token
    presented = bearer_token(request) or ""
    if not hmac.compare_digest(presented.encode(), expected.encode()):
        raise NotAuthenticated() if not presented else InvalidToken()
    exposition = request.app.state.metrics.exposition()
    return Response(exposition, media_type=METRICS_CONTENT_TYPE)

"""An HTTP JSON service over a `Predictor` or an `OnnxPredictor` (FastAPI, run by uvicorn in `scripts/serve.py`), with
dynamic batching (`batching.DynamicBatcher`) and what operations need to run it.

    POST /predict  {"titles": ["Heladera Gafa No Frost"], "top_k": 3}
                   -> {"predictions": [[{"label": "REFRIGERATORS", "score": 0.97}, ...]]}
    GET  /health   alive: 200 from the moment the server listens, {"status": "loading" | "ok" | "draining", ...}
    GET  /ready    200 once the model is loaded and a warm-up pass has run; 503 while loading or draining
    GET  /metrics  Prometheus metrics: requests by route and status, latency, titles per pass, titles waiting
    GET  /         a demo page that classifies what is typed into it

The server listens before the model loads (`load_predictor` runs on a thread), so an orchestrator sees it alive at
once and sends traffic when `/ready` says so. Bad requests are answered with `{"error": "..."}`: 400 for a body that
is no JSON (or JSON nested or numbered beyond what a parser takes), 413 for a body or a list of titles over the
limits, 422 for JSON of the wrong shape (a missing field, a title that is no string or no valid Unicode, top_k < 1 or
over `max_top_k`), 503 with `Retry-After` while loading or draining, or when more than `max_queue_titles` titles wait.
One request never fails another: titles are checked before they join a batch, and a forward pass that still fails is
tried again request by request, so that only the request that caused it gets the error (500).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from ..files import unicode_problem
from .batching import DynamicBatcher, QueueFull
from .ranking import RankingPredictor
from .service_metrics import ServiceMetrics

logger = logging.getLogger(__name__)

DEMO_PAGE = Path(__file__).parent / "templates" / "demo.html"
WARM_UP_TITLE = "Heladera Gafa No Frost 300 litros"
RETRY_AFTER_S = 1
ROUTES = ("/predict", "/health", "/ready", "/metrics", "/")


@dataclass
class ServiceLimits:
    """What one request may ask, and how titles are batched."""

    max_batch_size: int = 256  # titles per forward pass
    max_wait_ms: float = 0.0  # how long the first request of a batch waits for others
    max_titles: int = 1000  # titles per request
    max_body_bytes: int = 1 << 20  # request body size
    max_top_k: int = 20  # categories per title a request may ask for
    max_queue_titles: int = 4096  # titles admitted and waiting; past it a request gets 503 at once


class PredictRequest(BaseModel):
    """Titles to classify, and how many categories each gets."""

    model_config = ConfigDict(extra="forbid")

    titles: list[StrictStr] = Field(min_length=1, description="Product titles, one category ranking each.")
    top_k: StrictInt = Field(default=1, ge=1, description="Categories per title, best first.")


class CategoryScore(BaseModel):
    label: str = Field(description="Category name.")
    score: float = Field(description="Probability of the category.")


class PredictResponse(BaseModel):
    predictions: list[list[CategoryScore]] = Field(
        description="For each title, its top_k categories (an empty list for an empty title)."
    )


class ErrorResponse(BaseModel):
    error: str = Field(description="What was wrong, in one line.")


class HealthResponse(BaseModel):
    status: str = Field(description="loading, ok, draining or failed: the process is alive in each.")
    models: list[str] = Field(description="The checkpoints served, by folder name or Hub id, once loaded.")
    categories: int | None = Field(description="Categories the model knows, once loaded.")


class ReadyResponse(BaseModel):
    ready: bool


class ServiceState:
    """Where the service stands: loading, ready (loaded and warm), draining; read by `/health`, `/ready` and
    `/predict`, changed by the loader thread and by `start_draining` (the server's SIGTERM)."""

    def __init__(self):
        self.predictor: RankingPredictor | None = None
        self.ready = False
        self.draining = False
        self.failure: str | None = None

    @property
    def status(self) -> str:
        if self.failure is not None:
            return "failed"
        if self.draining:
            return "draining"
        return "ok" if self.ready else "loading"

    def start_draining(self) -> None:
        """Readiness turns 503 and new predictions are refused; admitted requests are still answered."""
        self.draining = True


def _error(status: int, message: str, retry_after: bool = False) -> JSONResponse:
    headers = {"Retry-After": str(RETRY_AFTER_S)} if retry_after else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None once it passes `limit` bytes (read no further)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _validation_message(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    return f"{where}: {first['msg']}" + (f" ({err.error_count() - 1} more)" if err.error_count() > 1 else "")


def create_app(
    load_predictor: Callable[[], RankingPredictor],
    limits: ServiceLimits | None = None,
    on_ready: Callable[[RankingPredictor], None] | None = None,
    on_load_failure: Callable[[BaseException], None] | None = None,
) -> FastAPI:
    """The service's FastAPI application. `load_predictor` runs on a thread once the application starts, then a
    warm-up pass; then `on_ready` gets the predictor, or `on_load_failure` what was raised (the server's cue to
    stop)."""
    limits = limits or ServiceLimits()
    state = ServiceState()
    batcher = DynamicBatcher(None, limits.max_batch_size, limits.max_wait_ms, limits.max_queue_titles)
    metrics = ServiceMetrics(lambda: batcher.queued_titles, lambda: float(state.ready and not state.draining))
    batcher.observe_batch = metrics.batch_titles.observe

    def load() -> None:
        try:
            predictor = load_predictor()
            predictor.predict([WARM_UP_TITLE])  # first-pass allocations and lazy initialisation, before traffic
        except BaseException as err:  # noqa: BLE001 - whatever failed, the server is told and stops
            state.failure = str(err).splitlines()[0] if str(err) else type(err).__name__
            if on_load_failure is not None:
                on_load_failure(err)
            return
        batcher.predictor = state.predictor = predictor
        state.ready = True
        if on_ready is not None:
            on_ready(predictor)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        threading.Thread(target=load, name="meli-load", daemon=True).start()
        worker = asyncio.create_task(batcher.run())
        try:
            yield
        finally:
            worker.cancel()
            batcher.close()

    app = FastAPI(title="meli-hf", summary="MeLi 2019 product-title categories", lifespan=lifespan)
    app.state.service = state
    app.state.batcher = batcher

    @app.middleware("http")
    async def count_requests(request: Request, call_next):
        start = time.perf_counter()
        response = await call_next(request)
        route = request.url.path if request.url.path in ROUTES else "other"
        metrics.observe_request(route, response.status_code, time.perf_counter() - start)
        return response

    def unavailable() -> JSONResponse:
        message = {"draining": "the service is stopping", "failed": "the model could not be loaded"}.get(
            state.status, "the model is loading"
        )
        return _error(503, message, retry_after=True)

    @app.get("/health", response_model=HealthResponse)
    async def health() -> dict:
        predictor = state.predictor
        return {
            "status": state.status,
            "models": predictor.model_names if predictor else [],
            "categories": len(predictor.labels) if predictor else None,
        }

    @app.get("/ready", response_model=ReadyResponse, responses={503: {"model": ErrorResponse}})
    async def ready():
        if not state.ready or state.draining:
            return unavailable()
        return {"ready": True}

    @app.get("/metrics", response_class=Response)
    async def prometheus_metrics() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    @app.get("/", response_class=HTMLResponse)
    async def demo() -> str:
        return DEMO_PAGE.read_text(encoding="utf-8")

    @app.post(
        "/predict",
        response_model=PredictResponse,
        responses={status: {"model": ErrorResponse} for status in (400, 413, 422, 500, 503)},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": PredictRequest.model_json_schema()}},
            }
        },
    )
    async def predict(request: Request):
        if not state.ready or state.draining:
            return unavailable()
        body = await _read_body(request, limits.max_body_bytes)
        if body is None:
            return _error(413, f"the request body is over {limits.max_body_bytes} bytes")
        try:
            payload = json.loads(body)
        except ValueError as err:  # not JSON, not UTF-8, or an integer of more digits than Python converts
            return _error(400, f"the request body is no JSON ({str(err).splitlines()[0]})")
        except RecursionError:
            return _error(400, "the request body is JSON nested deeper than a parser follows")
        try:
            query = PredictRequest.model_validate(payload)
        except ValidationError as err:
            return _error(422, _validation_message(err))
        except RecursionError:
            return _error(422, "body: nested too deep")
        if len(query.titles) > limits.max_titles:
            return _error(413, f"{len(query.titles)} titles: at most {limits.max_titles} a request")
        if query.top_k > limits.max_top_k:
            return _error(422, f"top_k: at most {limits.max_top_k} (the service's --max_top_k)")
        for number, title in enumerate(query.titles):
            if problem := unicode_problem(title):
                return _error(422, f"titles.{number}: {problem}")
        try:
            predictions = await batcher.predict(query.titles, query.top_k)
        except QueueFull as err:
            return _error(503, f"the service is busy: {err}", retry_after=True)
        except Exception as err:  # noqa: BLE001 - this request's own failure, tried alone
            logger.warning("a request failed on its own: %s", str(err).splitlines()[0] if str(err) else type(err))
            return _error(500, "the prediction failed")
        # The rows are built by the predictor as the response model says: sent as they are, not validated again.
        return JSONResponse({"predictions": predictions})

    return app

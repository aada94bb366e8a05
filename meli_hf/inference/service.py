"""An HTTP JSON service over a `Predictor` (FastAPI, run by uvicorn in `scripts/serve.py`), with dynamic batching.

A forward pass over 64 titles costs little more than over one, so the titles of requests that arrive together are
predicted together: `DynamicBatcher` takes every request waiting when a pass starts (up to `max_batch_size` titles,
after letting the first wait `max_wait_ms` for company, by default not at all: the requests that arrive during a pass
make the next one), predicts them in one call on a worker thread (the event loop keeps accepting requests), and
answers each request with its own rows.

    POST /predict  {"titles": ["Heladera Gafa No Frost"], "top_k": 3}
                   -> {"predictions": [[{"label": "REFRIGERATORS", "score": 0.97}, ...]]}
    GET  /health   -> {"status": "ok", "models": [...], "categories": 642}
    GET  /         a demo page that classifies what is typed into it

Bad requests are answered with `{"error": "..."}`: 400 for a body that is no JSON (or JSON nested or numbered beyond
what a parser takes), 413 for a body or a list of titles over the limits, 422 for JSON of the wrong shape (a missing
field, a title that is no string or no valid Unicode, top_k < 1 or over `max_top_k`). One request never fails
another: titles are checked before they join a batch, and a forward pass that still fails is tried again request by
request, so that only the request that caused it gets the error (500).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from ..files import unicode_problem
from .predictor import Predictor

logger = logging.getLogger(__name__)

DEMO_PAGE = Path(__file__).parent / "templates" / "demo.html"


@dataclass
class ServiceLimits:
    """What one request may ask, and how titles are batched."""

    max_batch_size: int = 256  # titles per forward pass
    max_wait_ms: float = 0.0  # how long the first request of a batch waits for others
    max_titles: int = 1000  # titles per request
    max_body_bytes: int = 1 << 20  # request body size
    max_top_k: int = 20  # categories per title a request may ask for


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    titles: list[StrictStr] = Field(min_length=1)
    top_k: StrictInt = Field(default=1, ge=1)


@dataclass
class _Waiting:
    titles: list[str]
    top_k: int
    answer: asyncio.Future = field(repr=False)


class DynamicBatcher:
    """Predicts the titles of concurrent requests in shared forward passes; `run` is the loop that does it."""

    def __init__(self, predictor: Predictor, max_batch_size: int, max_wait_ms: float):
        self.predictor = predictor
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000.0
        self.queue: asyncio.Queue[_Waiting] = asyncio.Queue()
        # One thread: forward passes run one at a time, each with torch's own intra-op threads.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="meli-predict")
        self.forward_calls = 0

    async def predict(self, titles: list[str], top_k: int) -> list[list[dict]]:
        waiting = _Waiting(titles, top_k, asyncio.get_running_loop().create_future())
        await self.queue.put(waiting)
        return await waiting.answer

    async def _next_batch(self) -> list[_Waiting]:
        batch = [await self.queue.get()]
        size, loop = len(batch[0].titles), asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait_s
        while size < self.max_batch_size:
            if self.queue.empty():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    waiting = await asyncio.wait_for(self.queue.get(), remaining)
                except TimeoutError:
                    break
            else:
                waiting = self.queue.get_nowait()
            batch.append(waiting)
            size += len(waiting.titles)
        return batch

    async def run(self) -> None:
        while True:
            batch = await self._next_batch()
            titles = [title for waiting in batch for title in waiting.titles]
            top_k = max(waiting.top_k for waiting in batch)
            try:
                rows = await self._forward(titles, top_k)
            except Exception:  # noqa: BLE001 - whatever failed, each request is tried alone
                await self._one_by_one(batch)
                continue
            self._answer(batch, rows)

    async def _forward(self, titles: list[str], top_k: int) -> list[list[dict]]:
        self.forward_calls += 1
        return await asyncio.get_running_loop().run_in_executor(self.executor, self.predictor.predict, titles, top_k)

    async def _one_by_one(self, batch: list[_Waiting]) -> None:
        """A failed shared pass, again one request at a time: only a request that fails alone gets the error."""
        for waiting in batch:
            try:
                rows = await self._forward(waiting.titles, waiting.top_k)
            except Exception as err:  # noqa: BLE001 - the request that fails gets its failure
                if not waiting.answer.done():
                    waiting.answer.set_exception(err)
                continue
            self._answer([waiting], rows)

    @staticmethod
    def _answer(batch: list[_Waiting], rows: list[list[dict]]) -> None:
        """Each request its own rows, cut to its own `top_k`."""
        start = 0
        for waiting in batch:
            own = rows[start : start + len(waiting.titles)]
            start += len(waiting.titles)
            if not waiting.answer.done():  # a client that went away leaves a cancelled future
                waiting.answer.set_result([predictions[: waiting.top_k] for predictions in own])

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


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


def create_app(predictor: Predictor, limits: ServiceLimits | None = None) -> FastAPI:
    """The service's FastAPI application over `predictor`."""
    limits = limits or ServiceLimits()
    batcher = DynamicBatcher(predictor, limits.max_batch_size, limits.max_wait_ms)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker = asyncio.create_task(batcher.run())
        try:
            yield
        finally:
            worker.cancel()
            batcher.close()

    app = FastAPI(title="meli-hf", summary="MeLi 2019 product-title categories", lifespan=lifespan)
    app.state.batcher = batcher
    names = predictor.model_names

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "models": names, "categories": len(predictor.labels)}

    @app.get("/", response_class=HTMLResponse)
    async def demo() -> str:
        return DEMO_PAGE.read_text(encoding="utf-8")

    @app.post("/predict")
    async def predict(request: Request):
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
        except Exception as err:  # noqa: BLE001 - this request's own failure, tried alone
            logger.warning("a request failed on its own: %s", str(err).splitlines()[0] if str(err) else type(err))
            return _error(500, "the prediction failed")
        return {"predictions": predictions}

    return app

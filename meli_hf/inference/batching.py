"""Dynamic batching for the HTTP service: the titles of requests that arrive together share one forward pass.

A forward pass over 64 titles costs little more than over one, so `DynamicBatcher` takes every request waiting when a
pass starts (up to `max_batch_size` titles, after letting the first wait `max_wait_ms` for company, by default not at
all: the requests that arrive during a pass make the next one), predicts them in one call on a worker thread (the
event loop keeps accepting requests), and answers each request with its own rows. At most `max_queue_titles` titles
wait: past that a request is refused at once (`QueueFull`), so that overload costs callers a retry, not unbounded
waits and memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field


class QueueFull(Exception):
    """More titles wait than the batcher admits (`max_queue_titles`)."""


@dataclass
class _Waiting:
    titles: list[str]
    top_k: int
    answer: asyncio.Future = field(repr=False)


class DynamicBatcher:
    """Predicts the titles of concurrent requests in shared forward passes; `run` is the loop that does it."""

    def __init__(
        self,
        predictor,
        max_batch_size: int,
        max_wait_ms: float,
        max_queue_titles: int | None = None,
        observe_batch: Callable[[int], None] | None = None,
    ):
        """`predictor`: anything with `predict(titles, top_k)`. `observe_batch`: called with the titles of each
        forward pass (the service's batch-size histogram)."""
        self.predictor = predictor
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000.0
        self.max_queue_titles = max_queue_titles
        self.observe_batch = observe_batch
        self.queue: asyncio.Queue[_Waiting] = asyncio.Queue()
        self.queued_titles = 0  # titles admitted and not yet in a forward pass
        # One thread: forward passes run one at a time, each with the runtime's own intra-op threads.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="meli-predict")
        self.forward_calls = 0

    async def predict(self, titles: list[str], top_k: int) -> list[list[dict]]:
        """The request's rows; `QueueFull` at once when its titles would pass `max_queue_titles`."""
        if self.max_queue_titles is not None and self.queued_titles + len(titles) > self.max_queue_titles:
            raise QueueFull(f"{self.queued_titles} titles are waiting; the service admits {self.max_queue_titles}")
        waiting = _Waiting(titles, top_k, asyncio.get_running_loop().create_future())
        self.queued_titles += len(titles)
        self.queue.put_nowait(waiting)
        return await waiting.answer

    async def _next_batch(self) -> list[_Waiting]:
        batch = await self._collect()
        self.queued_titles -= sum(len(waiting.titles) for waiting in batch)
        return batch

    async def _collect(self) -> list[_Waiting]:
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
        if self.observe_batch is not None:
            self.observe_batch(len(titles))
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

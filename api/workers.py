"""Blocking engine calls run on worker threads, so the event loop keeps serving.

The engine is shared and read-mostly: any number of searches run at once. Answers
are CPU-heavy, so at most ``answers`` of them are in flight (the others wait
without holding a thread); writes (ingest, delete) run one at a time here, and the
index's writer lock serialises them with other processes too.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, Callable, Iterator, TypeVar

import anyio
from starlette.concurrency import run_in_threadpool

T = TypeVar("T")

# Answers in flight at once, as the browser app's chat queue allows.
ANSWER_CONCURRENCY = 4

_END = object()


class Workers:
    def __init__(self, answers: int = ANSWER_CONCURRENCY):
        # asyncio primitives bind to the running loop on first use, not here.
        self._answers = asyncio.Semaphore(answers)
        self._writes = asyncio.Lock()

    async def read(self, fn: Callable[..., T], *args) -> T:
        return await run_in_threadpool(fn, *args)

    async def answer(self, fn: Callable[..., T], *args) -> T:
        async with self._answers:
            return await run_in_threadpool(fn, *args)

    async def write(self, fn: Callable[..., T], *args) -> T:
        async with self._writes:
            return await run_in_threadpool(fn, *args)

    async def answer_stream(self, events: Iterator[T]) -> AsyncIterator[T]:
        """Items of a blocking generator, each pulled on a worker thread, holding one answer slot throughout.

        When the client goes away the generator is closed (on a thread too).
        """
        async with self._answers:
            try:
                while True:
                    item = await run_in_threadpool(next, events, _END)
                    if item is _END:
                        return
                    yield item  # type: ignore[misc]
            finally:
                close = getattr(events, "close", None)
                if close is not None:
                    with anyio.CancelScope(shield=True):  # runs even when the client's request was cancelled
                        await run_in_threadpool(close)

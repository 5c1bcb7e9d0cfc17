"""Driving a real NautilusTrader TradingNode from a test: poll for conditions, run a scenario
while the node runs on its own event loop, and stop it cleanly (the node leaves executor workers
and timers behind, which must be cancelled before the loop closes)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def until(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy (returned), or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


def drive(node: Any, loop: asyncio.AbstractEventLoop, started: Callable[[], bool],
          scenario: Callable[[], Awaitable[None]], timeout: float, start_timeout: float = 20.0) -> None:
    """Run ``node`` on ``loop``; once ``started()`` holds, await ``scenario()`` (at most
    ``timeout`` seconds), then stop the node whatever happened. The caller disposes the node."""

    async def main() -> None:
        run = asyncio.ensure_future(node.run_async())
        try:
            await until(lambda: started() or run.done(), start_timeout, "the node to start")
            assert started(), "node failed to start"
            await asyncio.wait_for(scenario(), timeout)
        finally:
            await node.stop_async()
            run.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await run
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in rest:
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

    loop.run_until_complete(main())

"""Running the hooks' async methods from synchronous test code."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def run_async(coroutine_factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine on a fresh event loop and close the provider's HTTP session for that loop at the end.

    Hooks share one aiohttp session per event loop; a loop that ends must close it, or aiohttp warns
    about an unclosed session.
    """
    from airflow_workflow_provider.core.http import close_shared_async_session

    async def main() -> T:
        try:
            return await coroutine_factory()
        finally:
            await close_shared_async_session()

    return asyncio.run(main())

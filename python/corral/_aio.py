"""Glue between corral's threads and an asyncio event loop."""

from __future__ import annotations

import asyncio


def resolve(fut: asyncio.Future, ok: bool, value: object) -> None:
    """Settles ``fut`` on its loop's thread (called with ``call_soon_threadsafe``); a future
    cancelled meanwhile is left alone (the run itself finished within its limits)."""
    if fut.done():
        return
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)  # type: ignore[arg-type]

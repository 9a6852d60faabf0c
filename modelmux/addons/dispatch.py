"""Handlers joined into one, called as mitmproxy calls a script's addons: in order,
each awaitable awaited before the next, one that raises ending the event for the rest.
The Chain (all of modelmux's addons as one) and internals.Last (the hooks that run
after mitmproxy's own) hand mitmproxy's events on with it."""

from __future__ import annotations

import inspect
from collections.abc import Callable


def joined(handlers: list[Callable]) -> Callable:
    """One handler for an event: `handlers` in order, as mitmproxy would call them."""
    if len(handlers) == 1:
        return handlers[0]
    if any(inspect.iscoroutinefunction(handler) for handler in handlers):
        async def joined_async(*args):  # mitmproxy refuses it for a synchronous event, as it would its part
            await _from(0, handlers, args)
        return joined_async

    def joined(*args):
        for i, handler in enumerate(handlers):
            result = handler(*args)
            if result is not None and inspect.isawaitable(result):  # mitmproxy awaits a handler's awaitable
                return _from(i + 1, handlers, args, result)
        return None
    return joined


async def _from(start: int, handlers: list[Callable], args: tuple, awaited: object = None) -> None:
    if awaited is not None:
        await awaited  # type: ignore[misc]
    for handler in handlers[start:]:
        result = handler(*args)
        if result is not None and inspect.isawaitable(result):
            await result

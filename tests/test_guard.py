"""The Guard answers a flow whose request hooks raised, whichever addon raised, and only
that flow (modelmux/addons/guard.py; the gateway's own test is in test_security.py)."""

from __future__ import annotations

import asyncio
import json

from mitmproxy.proxy.layers.http import HttpRequestHeadersHook, HttpRequestHook
from mitmproxy.test import taddons, tflow

from modelmux.addons.guard import Guard
from modelmux.addons.internals import add_last, remove_last


class Raising:
    """Raises in the hook named by the flow's `x-raise` header."""

    def requestheaders(self, flow) -> None:
        if flow.request.headers.get("x-raise") == "requestheaders":
            raise RecursionError("maximum recursion depth exceeded")

    def request(self, flow) -> None:
        if flow.request.headers.get("x-raise") == "request":
            raise KeyError("name")


async def hooks(master, flow) -> None:
    """The request hooks of one flow, each in a task of its own as mitmproxy runs them."""
    for hook in (HttpRequestHeadersHook(flow), HttpRequestHook(flow)):
        await asyncio.ensure_future(master.addons.handle_lifecycle(hook))


def test_a_flow_whose_hook_raised_is_answered_500_and_others_pass() -> None:
    guard = Guard()

    async def run() -> list:
        with taddons.context(guard, Raising()) as context:
            chain = context.master.addons.chain
            # mitmdump loads scripts once its own addons are in the chain: the last addon comes after them all
            last = context.master.addons.get("modelmux_last")
            chain.remove(last)
            chain.append(last)
            flows = []
            for where in ("requestheaders", "request", ""):
                flow = tflow.tflow()
                flow.request.headers["x-raise"] = where
                await hooks(context.master, flow)
                flows.append(flow)
            return flows

    raised_early, raised_late, fine = asyncio.run(run())
    for flow, exception in ((raised_early, "RecursionError"), (raised_late, "KeyError")):
        assert flow.response.status_code == 500
        assert json.loads(flow.response.content) == {"type": "error", "error": {"type": "api_error", "message": (
            f"modelmux failed on this request ({exception} in one of its addons; the gateway log has the "
            "traceback); it was not sent anywhere")}}
    assert fine.response is None


def test_done_takes_the_last_addon_away_again() -> None:
    """A reloaded script calls `done`, then `load` on its new addons: one last addon at a time."""
    guard = Guard()
    with taddons.context(guard) as context:
        assert context.master.addons.get("modelmux_last").parts == [guard.last]
        context.master.addons.remove(guard)
        assert context.master.addons.get("modelmux_last") is None


def test_the_last_hooks_are_one_addon_at_the_chains_end_in_the_order_added() -> None:
    """Every addon costs every event's dispatch: the Guard's and the Relay's last hooks
    share one, the Guard's first."""
    heard: list[str] = []

    class Part:
        def __init__(self, name: str) -> None:
            self.name = name

        def request(self, flow) -> None:
            heard.append(self.name)

    first, second = Part("guard"), Part("relay")
    with taddons.context() as context:
        add_last(first)
        add_last(second)
        last = context.master.addons.get("modelmux_last")
        assert context.master.addons.chain[-1] is last and last.parts == [first, second]
        assert not hasattr(last, "requestheaders")  # no part handles it: mitmproxy skips it
        asyncio.run(context.master.addons.handle_lifecycle(HttpRequestHook(tflow.tflow())))
        assert heard == ["guard", "relay"]
        remove_last(first)
        remove_last(second)
        assert context.master.addons.get("modelmux_last") is None

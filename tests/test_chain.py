"""The gateway's addons reach mitmproxy as one addon, `Chain`, with mitmproxy's own
semantics for a script's addons (modelmux/addons/chain.py)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from mitmproxy import command
from mitmproxy.proxy.layers.http import HttpRequestHook, HttpResponseHook
from mitmproxy.test import taddons, tflow

from gateway import Gateway
from modelmux.addons import chain
from modelmux.addons.chain import Chain
from upstream import Upstream


class Part:
    def __init__(self, name: str, heard: list[str]) -> None:
        self.name, self.heard = name, heard

    def load(self, loader) -> None:
        self.heard.append(f"{self.name}.load")

    def configure(self, updated) -> None:
        self.heard.append(f"{self.name}.configure")

    def request(self, flow) -> None:
        self.heard.append(f"{self.name}.request")


class Waiting(Part):
    async def request(self, flow) -> None:
        await asyncio.sleep(0.01)
        self.heard.append(f"{self.name}.request")


class Handing(Part):
    """A synchronous handler that hands mitmproxy an awaitable, which mitmproxy awaits."""

    def request(self, flow):
        return self._later()

    async def _later(self) -> None:
        await asyncio.sleep(0.01)
        self.heard.append(f"{self.name}.request")


class Raising(Part):
    def request(self, flow) -> None:
        raise KeyError("name")

    def response(self, flow) -> None:
        self.heard.append(f"{self.name}.response")


class Commanding:
    @command.command("test.echo")
    def echo(self, text: str) -> str:
        return text


def test_each_hook_runs_the_addons_handlers_in_order_each_awaited_before_the_next() -> None:
    heard: list[str] = []
    parts = [Part("a", heard), Waiting("b", heard), Handing("c", heard), Part("d", heard)]

    async def run() -> None:
        with taddons.context(Chain(parts)) as context:
            heard.clear()
            await context.master.addons.handle_lifecycle(HttpRequestHook(tflow.tflow()))

    asyncio.run(run())
    assert heard == ["a.request", "b.request", "c.request", "d.request"]


def test_load_and_configure_reach_every_addon() -> None:
    heard: list[str] = []
    gateway = Chain([Part("a", heard), Part("b", heard)])
    with taddons.context(gateway) as context:
        context.configure(gateway)
    assert heard[:2] == ["a.load", "b.load"]
    assert heard[2:] == ["a.configure", "b.configure"]


def test_a_handler_that_raises_ends_the_event_for_the_addons_after_it_as_mitmproxy_does(caplog) -> None:
    heard: list[str] = []
    parts = [Part("a", heard), Raising("b", heard), Part("c", heard)]

    async def run() -> None:
        with taddons.context(Chain(parts)) as context:
            heard.clear()
            flow = tflow.tflow(resp=True)
            await context.master.addons.handle_lifecycle(HttpRequestHook(flow))
            await context.master.addons.handle_lifecycle(HttpResponseHook(flow))

    asyncio.run(run())
    assert heard == ["a.request", "b.response"]  # c's request was skipped; the next event goes on
    assert "Addon error" in caplog.text and "KeyError" in caplog.text


def test_mitmproxy_finds_the_addons_commands_and_looks_each_event_up_once() -> None:
    gateway = Chain([Commanding(), Part("a", [])])
    with taddons.context(gateway) as context:
        assert context.master.commands.call("test.echo", "hi") == "hi"
        assert gateway.request == gateway.parts[1].request  # one handler: the addon's own
        assert not hasattr(gateway, "responseheaders")  # no addon has one: mitmproxy skips it
    with pytest.raises(AttributeError):
        gateway.addons  # noqa: B018  mitmproxy would dispatch every event to a Chain's `addons` again


def test_the_gateway_is_one_addon_holding_the_whole_list_in_hook_order() -> None:
    (gateway,) = chain.build()
    names = [type(addon).__name__ for addon in gateway.parts]
    assert names[:3] == ["Guard", "HeaderTimeout", "Vault"]
    assert names.index("Router") < names.index("Direct") < names.index("Dashboard") < names.index("Usage")
    assert names[-2:] == ["Recorder", "Retention"]


class Counting(Part):
    def response(self, flow) -> None:
        self.heard.append(f"{self.name}.response")


class CountingBadly(Part):
    def response(self, flow) -> None:
        raise KeyError("name")


def test_bookkeeping_runs_after_the_hook_in_order_each_on_its_own(caplog):
    """The `after_answer` addons' response hooks run once the hook is done (mitmproxy
    writes the answer then), in the list's order, and one that raises stops none of the
    others."""
    heard: list[str] = []
    parts = [Counting("a", heard), CountingBadly("broken", heard), Raising("b", heard), Counting("c", heard)]

    async def scenario() -> None:
        with taddons.context(Chain(parts, after_answer=(Counting, CountingBadly))) as context:
            await context.master.addons.handle_lifecycle(HttpResponseHook(tflow.tflow(resp=True)))
            heard.append("hook done")
            await asyncio.sleep(0.01)
    asyncio.run(scenario())
    assert [h for h in heard if not h.endswith((".load", ".configure"))] == [
        "b.response", "hook done", "a.response", "c.response"]
    assert "Addon error: CountingBadly.response, after the answer was sent" in caplog.text


def test_the_gateways_bookkeeping_is_after_the_answer():
    assert {type(p).__name__ for p in chain.addons() if isinstance(p, chain.AFTER_THE_ANSWER)} == {
        "Usage", "Metrics", "Overview", "Traces", "Retention"}


@pytest.mark.parametrize("stream", [False, True])  # the relay's JSON answer; mitmproxy's own stream
def test_the_client_has_its_answer_before_the_bookkeeping(tmp_path: Path, stream: bool):
    """With the Metrics' count taking a second (blocking the gateway), the answer comes at
    once, and the count happens all the same."""
    script = Path(__file__).parent / "scripts" / "slow_bookkeeping.py"
    with Upstream() as upstream:
        routes = f"providers:\n  zai: {{protocol: anthropic, base_url: '{upstream.url}', credentials: [{{label: a, key: k-0001}}]}}\n" \
                 "routes:\n  - {match: 'glm-*', provider: zai}\ndefault: null\n"
        with Gateway(tmp_path, routes, extra_args=["-s", str(script)]) as gateway:
            body = {"model": "glm-4.6", "max_tokens": 8, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
            began = time.monotonic()
            answer = httpx.post(f"{gateway.url}/v1/messages", json=body, timeout=10)
            took = time.monotonic() - began
            assert answer.status_code == 200 and b"Hello" in answer.content
            assert took < 0.6, f"the answer waited {took:.2f} s for the bookkeeping"
            metrics = httpx.get(f"{gateway.url}/metrics", timeout=10).text
            assert 'modelmux_requests_total{' in metrics and 'provider="zai"' in metrics

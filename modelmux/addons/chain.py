"""The modelmux gateway as one mitmproxy script: its addons, in hook order.

`mitmdump -s PATH/TO/modelmux/addons/chain.py --mode reverse:https://api.anthropic.com@127.0.0.1:7878`
runs the gateway from an installed modelmux (`modelmux serve` does exactly that), and
`mitmweb` with the same arguments is the dashboard. A checkout's `addons/router.py`
loads the same list. Options: `--set modelmux_config=PATH` (default: found as
`modelmux serve` finds it), `--set modelmux_record=FILE`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
from collections.abc import Callable
from pathlib import Path

from mitmproxy import addonmanager  # noqa: F401  these define every event (hooks.all_hooks)
from mitmproxy import hooks
from mitmproxy.proxy import layers  # noqa: F401
from mitmproxy.proxy import server_hooks  # noqa: F401

from modelmux.addons.credentials import Credentials
from modelmux.addons.dashboard import Dashboard
from modelmux.addons.direct import Direct
from modelmux.addons.discovery import Discovery
from modelmux.addons.dispatch import joined
from modelmux.addons.echoes import Echoes
from modelmux.addons.failover import Failover
from modelmux.addons.failures import Failures
from modelmux.addons.fleet import Fleet
from modelmux.addons.guard import Guard
from modelmux.addons.header_timeout import HeaderTimeout
from modelmux.addons.heartbeat import Heartbeat
from modelmux.addons.inbound import InboundAuth
from modelmux.addons.internals import install_quick_type_checks
from modelmux.addons.listeners import Listeners
from modelmux.addons.local import LocalAPI
from modelmux.addons.log_secrets import LogSecrets
from modelmux.addons.metrics import Metrics
from modelmux.addons.overview import Overview
from modelmux.addons.recorder import Recorder
from modelmux.addons.redactor import Redactor
from modelmux.addons.relay import Relay
from modelmux.addons.retention import Retention
from modelmux.addons.router import Router
from modelmux.addons.settings import Settings
from modelmux.addons.traces import Traces
from modelmux.addons.usage import Usage
from modelmux.addons.vault import Vault
from modelmux.config.paths import find_config

logger = logging.getLogger(__name__)


class Chain:
    """modelmux's addons as the one addon mitmproxy sees: each hook calls theirs in order.

    mitmproxy looks every addon up for every event it dispatches (a lifecycle event and
    the `update` after it) and reads the event's arguments once per handler
    (addonmanager.invoke_addon). Over modelmux's 26 addons and a request's 16 events that
    bookkeeping cost about 250 µs of every request's CPU (docs/benchmarks.md); a Chain
    is looked up once per event, and each hook here is the list of the addons' handlers.
    The semantics are mitmproxy's own for a script's addons: handlers run in the list's
    order, an awaitable one is awaited before the next, and one that raises ends the
    event for the addons after it (mitmproxy logs it; the Guard answers the flow).
    Commands are the addons' own, collected by mitmproxy from the Chain.

    The `response` hooks of the addons that are `after_answer` (bookkeeping: counting,
    tracing, trimming mitmweb's list) run after the hook, once mitmproxy has written the
    answer to the client: the client no longer waits for them, and they change nothing
    it gets or any addon reads in the hook. An addon whose response work may wait only
    sometimes (the Dashboard's summary, unless flows are kept) names it `answered`: it is
    called among them, in the list's order."""

    name = "modelmux"  # mitmproxy keys addons by name

    def __init__(self, addons: list[object], after_answer: tuple[type, ...] = ()) -> None:
        self.parts = addons  # not `addons`: mitmproxy would dispatch to each of them again
        for event in hooks.all_hooks:  # an event no addon handles stays missing: mitmproxy skips it
            found = [(addon, handler) for addon in addons if callable(handler := getattr(addon, event, None))]
            handlers = [handler for addon, handler in found]
            if event == "response" and (later := _answered(addons, after_answer)):
                handlers = [h for addon, h in found if not isinstance(addon, after_answer)] + [_after_answer(later)]
            if handlers:
                setattr(self, event, joined(handlers))
        for addon in addons:  # each command under its own name, where mitmproxy's dir() finds it
            for attribute in dir(type(addon)):
                if isinstance(name := getattr(getattr(type(addon), attribute), "command_name", None), str):
                    setattr(self, name, getattr(addon, attribute))


def _answered(addons: list[object], after_answer: tuple[type, ...]) -> list[Callable]:
    """What runs once the answer is written, in the list's order: the `after_answer`
    addons' response hooks and every `answered` handler."""
    found = (getattr(addon, "response" if isinstance(addon, after_answer) else "answered", None) for addon in addons)
    return [handler for handler in found if callable(handler)]


def _after_answer(handlers: list[Callable]) -> Callable:
    """One handler that has `handlers` called in order once mitmproxy has written the
    answer. It writes it when the hook's task goes on, and a hook that began inside the
    handling of another event goes on in the next turn of the loop (mitmproxy's
    server_event lock: ConnectionHandler.hook_task), so they are called the turn after."""
    assert not any(inspect.iscoroutinefunction(handler) for handler in handlers), "nothing awaits them"

    def later(*args):
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a test calling the hook): now
            _each(handlers, args)
            return
        loop.call_soon(loop.call_soon, _each, handlers, args)
    return later


def _each(handlers: list[Callable], args: tuple) -> None:
    for handler in handlers:  # one that raises is logged as mitmproxy logs an addon's, and the rest still run
        try:
            handler(*args)
        except Exception:
            logger.exception("Addon error: %s, after the answer was sent", handler.__qualname__)


def build(default_config: Path | None = None) -> list[object]:
    """A fresh gateway, as mitmproxy's addon list; `default_config` is modelmux_config's default."""
    install_quick_type_checks()
    return [Chain(addons(default_config), after_answer=AFTER_THE_ANSWER)]


# Their `response` hooks keep account of an answer and change nothing the client gets,
# the flow that mitmweb, -w or the Recorder keep, or what another addon reads in the hook.
AFTER_THE_ANSWER = (Usage, Metrics, Overview, Traces, Retention)


def addons(default_config: Path | None = None) -> list[object]:
    """A fresh set of the gateway's addons, in hook order; `default_config` is modelmux_config's default."""
    settings = Settings(default_config=default_config or find_config(None, os.environ))
    dashboard = Dashboard()
    credentials = Credentials(settings)
    direct = Direct(credentials, dashboard)
    relay = Relay(Failover(credentials))
    usage = Usage(settings)
    metrics = Metrics(credentials)
    traces = Traces(settings)
    inbound = InboundAuth(settings)
    fleet = Fleet(settings, credentials, usage, inbound)
    discovery = Discovery(settings)
    overview = Overview(settings)
    return [
        Guard(),  # first: it must be in place before any other addon can fail
        HeaderTimeout(),  # before any addon whose failing requestheaders hook would skip it
        Vault(),  # before every addon that reads the request: none of them, and no reader of the flow, sees a real credential on it
        settings,
        LogSecrets(settings),  # after Settings, which loads routes.yaml: no configured secret in a log line
        Listeners(settings),
        inbound,
        LocalAPI(settings, credentials, usage, metrics, inbound),
        overview.page,  # beside LocalAPI: the overview page and the recent errors, answered here
        traces.inputs,  # before the Router, which rewrites the request: the client's messages, for traces with content
        discovery,  # before the Router, which caps each request's output by what it knows
        Router(settings, credentials, direct, relay, discovery),
        Failures(),  # before Direct: its error hook names how mitmproxy's attempt failed
        direct,  # mitmproxy's own send path; the relay's is Failover
        Heartbeat(),  # after Direct, whose stream it keeps alive
        credentials,
        fleet,  # the pools' state shared with other gateways (state: {backend: redis})
        relay,
        Echoes(settings),  # after every addon that writes the answer, before the Dashboard meters it
        dashboard,  # after every addon that sets a stream (it meters what the client gets) and before the readers of its summary
        Redactor(settings),  # after every addon that keeps a copy: it scrubs the keys an upstream echoed
        usage,  # after the Dashboard, whose response/error hooks complete the summary it counts
        metrics,  # after the Dashboard too: it counts the same summaries as Usage
        overview,  # after the Dashboard and the Redactor: the recent errors, from the summaries
        traces,  # after the Dashboard: a span per summary, and (content) the stream the client got
        Recorder(settings),  # after every addon that writes the flow: it records the finished one
        Retention(),
    ]


if __name__.startswith("__mitmproxy_script__"):  # loaded by `-s`; imported, it builds nothing
    addons = build()

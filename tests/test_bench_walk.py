"""bench/walk.py: what it counts, on made-up events and on a real traced gateway."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # bench/ is the checkout's, not an installed package

from bench import walk  # noqa: E402


def _start(root: str, at: int, kind: str = "call", born: int | None = None, via: str = "mitmproxy:hook") -> dict:
    return {"e": "start", "root": root, "kind": kind, "via": via, "born": at if born is None else born, "at": at}


def _move(src: str, dst: str, kind: str) -> dict:
    return {"e": "move", "src": src, "dst": dst, "kind": kind}


END = {"e": "end"}
MARK = {"e": "mark", "by": "mitmproxy", "upstream": True}


def test_layers():
    assert walk.layer_of("addons.router") == walk.SHELL
    assert walk.layer_of("routing") == walk.CORE
    assert walk.layer_of("translate.openai_chat.stream") == walk.LEAF
    assert walk.layer_of("translate.sse") == walk.LEAF
    assert walk.layer_of("translate.effort") == walk.CORE  # in translate/, core by its role


def test_a_request_walk_ends_where_the_request_leaves_and_skips_background_loops():
    events = [
        _start("usage:Usage._write_loop", 1),  # a background loop, started before any request
        END,
        _start("addons.router:Router.request", 10),
        _move("addons.router:Router.route_message", "routing:route", "call"),
        _move("routing:route", "addons.router:Router.route_message", "return"),
        _move("addons.router:Router.route_message", "exchange:prepare", "call"),
        _move("exchange:prepare", "translate.openai_chat.request:to_chat", "call"),
        _move("translate.openai_chat.request:to_chat", "translate.effort:reasons", "call"),  # a leaf calling core
        _move("translate.effort:reasons", "translate.openai_chat.request:to_chat", "return"),
        _move("translate.openai_chat.request:to_chat", "exchange:prepare", "return"),
        _move("exchange:prepare", "addons.router:Router.route_message", "return"),
        END,
        _start("usage:Usage._write_loop", 20, kind="resume", born=1),  # wakes up meanwhile: not the request's
        _move("usage:Usage._write_loop", "config.paths:state_dir", "call"),
        END,
        _start("exchange:estimate", 30, via="asyncio.events:Handle._run"),
        _move("exchange:estimate", "translate.token_estimate:estimate_input_tokens", "call"),
        _move("translate.token_estimate:estimate_input_tokens", "exchange:estimate", "return"),
        END,
        MARK,  # mitmproxy sends it between stretches
        _start("addons.heartbeat:Heartbeat.responseheaders", 40),  # after the request left
        _move("addons.heartbeat:Heartbeat.responseheaders", "addons.translator:translation_of", "call"),
        END,
    ]
    [request] = walk.requests(walk.stretches(events))
    found = walk.request_walk("request", request, first=10)
    assert [s.root for s in found.stretches] == ["addons.router:Router.request", "exchange:estimate"]
    moves, back_up, modules, calls, calls_up = found.counts()
    assert moves == 10
    # routing → router, exchange → router, openai_chat.request → exchange, token_estimate → exchange,
    # and the leaf's call of effort (core)
    assert back_up == 5
    assert modules == 6  # router, routing, exchange, openai_chat.request, effort, token_estimate
    assert (calls, calls_up) == (5, 1)


def test_a_mark_inside_a_stretch_cuts_it():
    events = [
        _start("addons.router:Router.request", 1),
        _move("addons.relay:Relay._exchange", "addons.failover:Failover.run", "call"),
        MARK,  # the Sender sends it from inside the relay's task
        _move("addons.failover:Failover.run", "addons.relay:Relay._exchange", "return"),
        END,
    ]
    [request] = walk.requests(walk.stretches(events))
    assert walk.request_walk("request", request, first=1).counts()[0] == 1


def test_requests_that_never_left_are_health_checks():
    events = [_start("addons.router:Router.request", 1), END, _start("addons.router:Router.request", 2), END, MARK]
    assert len(walk.requests(walk.stretches(events))) == 1


def test_the_walk_through_a_real_gateway(tmp_path: Path):
    """Both send paths, request and chunk, counted twice each with the same result."""
    found, unstable = walk.walks(walk.trace(tmp_path))
    assert unstable == []
    by_name = {w.name.split(" (")[0]: w for w in found}
    assert set(by_name) == {"request, single key", "chunk, single key", "request, pool of 2", "chunk, pool of 2"}
    for name in ("request, single key", "request, pool of 2"):
        assert {"addons.router", "attempt.exchange", "translate.openai_chat.request"} <= by_name[name].modules
    assert {"addons.failover", "addons.relay"} <= by_name["request, pool of 2"].modules
    for name in ("chunk, single key", "chunk, pool of 2"):
        assert "translate.openai_chat.stream" in by_name[name].modules
    assert "addons.pump" in by_name["chunk, pool of 2"].modules
    for w in found:
        moves, back_up, modules, calls, calls_up = w.counts()
        assert 0 < back_up < moves and calls_up <= calls <= moves

"""`python -m bench.walk [--verbose] [--markdown]`: the moves between modelmux's modules, counted.

Issue 19 describes the walk of a translated request as "20 moves between 12 modules,
10 of them back up a layer". This counts it on a real gateway (mitmdump -q -s
addons/router.py, the bench's modelmux gateway, translating to OpenAI Chat), run by
bench/tracer.py, which records each time control passes from a function in one
modelmux module to a function in another. Four walks:

- a request, from the Router's `request` hook until it is handed over for sending
  upstream: to mitmproxy (it assembles the request's head) when the provider has a
  single key; to the failover relay's Sender, which writes it, when it has a pool of two. Every
  addon's `request` hook after the Router's is on the way, and so is whatever the
  event loop runs of modelmux's before the request leaves;
- one streamed chunk of the answer, a text delta in its middle, from when mitmproxy
  hands it to modelmux until modelmux returns the bytes for the client. Through the
  relay that is two stretches: the Pump's turn with the upstream's chunk (until it has
  written the translated one to mitmproxy), then mitmproxy's stream callable with it.

A move is a call from a function in one modelmux module into a function in another,
or the return back (a generator's resumption and yield too). Only modelmux's modules
count: mitmproxy or asyncio calling modelmux starts a stretch but is no move; a call
through foreign code (a callback) counts from the nearest modelmux function above it.
A coroutine's suspension and resumption are not moves (the event loop has control in
between); a task a modelmux function creates is one move into it when it starts.
Methods that dataclasses generate have no source file and are not seen.

Layers (LAYERS below): shell (modelmux/addons/, mitmproxy's side), core (everything
else), leaf (protocol translation). A move goes back up a layer when it goes from a
lower layer to a higher one: a return from core to the shell, or a translator calling
core. "Calls up a layer" counts only the calls among them, against the dependency
direction the house rules ask for (shell → core → leaf).

The request is the bench's 79 KB Claude Code request (bench/client.py), so a
translator's loop over 24 tools makes two moves per tool; "distinct calls" counts each
caller-callee pair of functions once, loops or not. Each path is warmed up (a first
request imports and caches) and then counted twice; the counts must agree.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.client import Body, Connection
from bench.measure import PATH, REQUEST_TIMEOUT, controls
from bench.targets import REPO, Gateway, Process, UpstreamProcess, free_port, provider_yaml, route_yaml
from bench.tracer import START, STREAM_CALLER

# -- layers ------------------------------------------------------------------------------------
# A module's layer is its role, not what it imports today (those imports have cycles:
# issue 19), nor the folder it is in: translate/ also holds modules whose role is core
# (the request's checks at the edge, efforts, model lists, the meter), listed by name
# below, so walks counted before issue 19's layout and after it compare.
SHELL, CORE, LEAF = 3, 2, 1
LAYER_NAMES = {SHELL: "shell", CORE: "core", LEAF: "leaf"}
LAYERS: dict[int, tuple[str, ...]] = {
    # mitmproxy's side: the addons, their stream callables, the relay with its Failover
    # and Pump, and every touch of mitmproxy's internals.
    SHELL: ("addons",),
    # Core by role, though in translate/.
    CORE: ("translate.validation", "translate.effort", "translate.effort_checks", "translate.model_paths",
           "translate.model_lists", "translate.meter"),  # fmt: skip
    # Protocol translation: the translators, the Anthropic-side stream and message
    # builders they share, SSE framing, tool names, the token estimate and media sizes,
    # passthrough's model restoring, the protocol registry.
    LEAF: ("translate",),
    # Everything else is core: routing, attempt/ (the engine, one attempt's request), credentials,
    # config, errors, headers, oauth, the command line.
}


def layer_of(module: str) -> int:
    """`module`: dotted, inside modelmux (`addons.router`, `translate.openai_chat.stream`):
    the whole name if LAYERS lists it, else its first part (its folder)."""
    for name in (module, module.partition(".")[0]):
        for layer, names in LAYERS.items():
            if name in names:
                return layer
    return CORE


def layers_text() -> str:
    listed = "; ".join(f"{LAYER_NAMES[layer]} = {', '.join(names)}" for layer, names in LAYERS.items())
    return (f"Layers: {listed}; core = every other modelmux module (a module listed by name takes its "
            "layer over its folder's). A move back up a layer goes from a "
            "lower layer to a higher one (shell above core above leaf).")  # fmt: skip


# -- the traced gateway ------------------------------------------------------------------------

SINGLE_MODEL, POOL_MODEL = "gpt-walk", "gpt-walk-pool"
EVENTS = 6  # text deltas in each streamed answer; the walk follows one in the middle
GAP_MS = 5  # between the upstream's events, so each reaches the gateway as a read of its own
WARMUP, COUNTED = 2, 2  # requests per path: the first ones import and cache


def routes_yaml(upstream: int, port: int) -> str:
    base, auth = f"http://127.0.0.1:{upstream}/v1", "Authorization: Bearer {key}"
    providers = [provider_yaml("chat", "openai-chat", base, auth, {"walk": "sk-walk-single"}),
                 provider_yaml("chat_pool", "openai-chat", base, auth, {"a": "sk-walk-aaaa", "b": "sk-walk-bbbb"})]  # fmt: skip
    routes = [route_yaml(SINGLE_MODEL, "chat", "walk-upstream"), route_yaml(POOL_MODEL, "chat_pool", "walk-upstream")]
    return f"server:\n  host: 127.0.0.1\n  port: {port}\nproviders:\n{''.join(providers)}routes:\n{''.join(routes)}"


class TracedGateway(Gateway):
    """The bench's modelmux gateway with the tracer installed (bench/tracer.py). It asks
    no model lists: those requests would be walks of their own."""

    def __init__(self, workdir: Path, upstream: int, events: Path) -> None:
        self.port = free_port()
        config = workdir / "walk.routes.yaml"
        config.write_text(routes_yaml(upstream, self.port))
        mitmdump = ["-q", "--mode", f"reverse:http://127.0.0.1:{upstream}@127.0.0.1:{self.port}",
                    "--set", "connection_strategy=lazy", "--set", "modelmux_model_lists=false",
                    "-s", str(REPO / "addons" / "router.py"), "--set", f"modelmux_config={config}"]  # fmt: skip
        argv = [sys.executable, "-m", "bench.tracer", "--into", str(events), "--upstream-port", str(upstream), "--", *mitmdump]
        Process.__init__(self, "walk-gateway", argv, workdir / "walk-gateway.log")


async def _send(port: int) -> None:
    connection = Connection(port)
    try:
        for model in (SINGLE_MODEL, POOL_MODEL):
            body = Body(model, stream=True)
            for _ in range(WARMUP + COUNTED):
                asked = body.next(controls(EVENTS) + f" gap-ms={GAP_MS}")
                response = await asyncio.wait_for(connection.post(PATH, asked), REQUEST_TIMEOUT)
                if response.status != 200 or response.deltas() != EVENTS:
                    raise RuntimeError(f"{model}: HTTP {response.status}, {response.deltas()} deltas: {response.body[:300]!r}")
    finally:
        connection.close()


def trace(workdir: Path) -> list[dict[str, Any]]:
    """The tracer's events for WARMUP + COUNTED streamed requests down each path."""
    upstream = UpstreamProcess(workdir / "upstream.log")
    events = workdir / "walk.jsonl"
    gateway: TracedGateway | None = None
    try:
        upstream.start()
        gateway = TracedGateway(workdir, upstream.port, events)
        gateway.start()
        asyncio.run(_send(gateway.port))
    except Exception:
        if gateway is not None and gateway.log.exists():
            print(f"--- the traced gateway's log\n{gateway.tail()}", file=sys.stderr)
        raise
    finally:
        if gateway is not None:
            gateway.stop()
        upstream.stop()
    return [json.loads(line) for line in events.read_text().splitlines() if line.strip()]


# -- what the events add up to -----------------------------------------------------------------


def _module_of(where: str) -> str:
    return where.partition(":")[0]


@dataclass(frozen=True)
class Move:
    src: str  # module:qualified name
    dst: str
    kind: str  # call, return, resume, yield, spawn; "mark": the request left here

    @property
    def up(self) -> bool:
        return layer_of(_module_of(self.dst)) > layer_of(_module_of(self.src))

    @property
    def is_call(self) -> bool:
        return self.kind in ("call", "resume", "spawn")


MARK = Move("", "", "mark")


@dataclass
class Stretch:
    """modelmux code running from an entry (foreign code calling it, or a suspended
    coroutine resuming) until that first function returns or suspends."""

    root: str
    kind: str  # call, spawn (a task a modelmux function created), resume
    via: str  # the foreign function it was entered from
    born: int  # the tracer's count when the root function first started
    at: int  # and when this stretch began
    chunk: str | None  # what a stream callable was handed
    moves: list[Move] = field(default_factory=list)

    @property
    def marked(self) -> bool:
        return MARK in self.moves

    def until_mark(self) -> Stretch:
        cut = self.moves.index(MARK) if self.marked else len(self.moves)
        return Stretch(self.root, self.kind, self.via, self.born, self.at, self.chunk, self.moves[:cut])


def stretches(events: Iterable[dict[str, Any]]) -> list[Stretch]:
    found: list[Stretch] = []
    current: Stretch | None = None
    for event in events:
        kind = event["e"]
        if kind == "start":
            current = Stretch(event["root"], event["kind"], event["via"], event["born"], event["at"], event.get("chunk"))
            found.append(current)
        elif kind == "end":
            current = None
        elif kind == "move" and current is not None:
            current.moves.append(Move(event["src"], event["dst"], event["kind"]))
        elif kind == "mark" and event["upstream"] and (current or found):
            # Between stretches, it belongs at the end of the last one: mitmproxy's send is
            # a generator that runs after the Vault's wrapper has returned it.
            (current or found[-1]).moves.append(MARK)
    return found


@dataclass
class Walk:
    name: str
    stretches: list[Stretch]

    @property
    def moves(self) -> list[Move]:
        return [m for s in self.stretches for m in s.moves]

    @property
    def modules(self) -> set[str]:
        return {_module_of(s.root) for s in self.stretches} | {_module_of(w) for m in self.moves for w in (m.src, m.dst)}

    def counts(self) -> tuple[int, int, int, int, int]:
        """Moves, of them back up a layer, modules, distinct calls, of them up a layer."""
        moves = self.moves
        calls = {(m.src, m.dst): m for m in moves if m.is_call}
        return len(moves), sum(m.up for m in moves), len(self.modules), len(calls), sum(m.up for m in calls.values())

    def lines(self) -> Iterator[str]:
        for stretch in self.stretches:
            shown = f": {stretch.chunk.strip()!r}" if stretch.chunk else ""
            yield f"  [{stretch.kind} from {stretch.via} → {stretch.root}]{shown}"
            depth, rendered = 1, []
            for move in stretch.moves:
                depth -= not move.is_call
                arrow = "↑" if move.up else " "
                rendered.append(f"  {arrow} {'  ' * depth}{_tag(move.src)} {move.src} → {_tag(move.dst)} {move.dst} ({move.kind})")
                depth += move.is_call
            yield from _collapsed(rendered)


def _tag(where: str) -> str:
    return LAYER_NAMES[layer_of(_module_of(where))][0]


def _collapsed(lines: list[str], periods: tuple[int, ...] = (2, 4)) -> Iterator[str]:
    """Runs of the same block of lines (a loop's call and return), shown once with a count."""
    i = 0
    while i < len(lines):
        for period in periods:
            block, times = lines[i : i + period], 1
            while len(block) == period and lines[i + times * period : i + (times + 1) * period] == block:
                times += 1
            if times > 1:
                yield from block
                yield f"{block[0][:2]}{' ' * (len(block[0]) - len(block[0].lstrip()) - 2)}(the {period} lines above ×{times})"
                i += times * period
                break
        else:
            yield lines[i]
            i += 1


def requests(found: list[Stretch]) -> list[list[Stretch]]:
    """The stretches of each request sent upstream, from its Router hook to the next
    one's (health checks pass the Router too, and are left out)."""
    starts = [i for i, s in enumerate(found) if s.root.endswith(":" + START)]
    groups = [found[i:j] for i, j in zip(starts, starts[1:] + [len(found)])]
    return [g for g in groups if any(s.marked for s in g)]


def request_walk(name: str, request: list[Stretch], first: int) -> Walk:
    """From the Router's hook until the request is handed over for sending upstream.
    `first`: when the run's first request began. A coroutine suspended since before it
    is one of the gateway's background loops (the usage file's writer, the routes.yaml
    watcher): its turns are not this request's."""
    kept = []
    for stretch in request:
        if stretch.kind == "resume" and stretch.born < first:
            continue
        kept.append(stretch.until_mark())
        if stretch.marked:
            return Walk(name, kept)
    raise RuntimeError(f"{name}: the request was never handed over for sending upstream")


def chunk_walk(name: str, request: list[Stretch], relayed: bool) -> Walk:
    """A text delta in the middle of the answer: mitmproxy's call of the stream callable
    with it, and through the relay the Pump's turn with it before that."""
    called = [s for s in request if s.via.endswith(STREAM_CALLER) and _one_delta(s.chunk or "")]
    if len(called) < 3:
        raise RuntimeError(f"{name}: {len(called)} calls of the stream callable with one text delta, of {EVENTS} "
                           "deltas: did the upstream's events arrive together?")  # fmt: skip
    walked = [called[len(called) // 2]]
    if relayed:
        # The Pump's turns: resumptions of a task this request started that wrote one chunk
        # to mitmproxy (the first delta goes with the events held before it).
        begin = request[0].at
        pumped = [s for s in request if s.kind == "resume" and s.born >= begin and _writes_one_chunk(s)]
        if len(pumped) < 3:
            raise RuntimeError(f"{name}: {len(pumped)} turns of the Pump that wrote one chunk, of {EVENTS} deltas")
        walked.insert(0, pumped[len(pumped) // 2])
    return Walk(name, walked)


def _one_delta(chunk: str) -> bool:
    """One upstream Chat chunk with text, or one Anthropic text delta (relayed)."""
    if chunk.startswith("event: content_block_delta"):
        return chunk.count("event:") == 1
    return chunk.count("data:") == 1 and '"content":"' in chunk and '"content":""' not in chunk


def _writes_one_chunk(stretch: Stretch) -> bool:
    return (any(layer_of(_module_of(m.dst)) == LEAF for m in stretch.moves)
            and sum(m.kind == "call" and m.dst.endswith(":Responder.chunk") for m in stretch.moves) == 1)  # fmt: skip


def walks(events: list[dict[str, Any]]) -> tuple[list[Walk], list[str]]:
    """The four walks, as counted the last time; and those whose counted runs disagree."""
    per_request = requests(stretches(events))
    if len(per_request) != 2 * (WARMUP + COUNTED):
        raise RuntimeError(f"saw {len(per_request)} requests sent upstream from {START}, not {2 * (WARMUP + COUNTED)}")
    first = per_request[0][0].at
    paths = [("single key (mitmproxy sends)", per_request[WARMUP : WARMUP + COUNTED], False),
             ("pool of 2 (the relay sends)", per_request[2 * WARMUP + COUNTED :], True)]  # fmt: skip
    found, unstable = [], []
    for label, counted, relayed in paths:
        for name, runs in ((f"request, {label}", [request_walk(f"request, {label}", r, first) for r in counted]),
                           (f"chunk, {label}", [chunk_walk(f"chunk, {label}", r, relayed) for r in counted])):  # fmt: skip
            if len({w.counts() for w in runs}) > 1:
                unstable.append(f"{name}: {' vs '.join(str(w.counts()) for w in runs)}")
            found.append(runs[-1])
    return found, unstable


# -- the report --------------------------------------------------------------------------------

HEADER = ("walk", "moves", "back up a layer", "modules", "distinct calls", "calls up a layer")


def table(found: list[Walk], markdown: bool = False) -> str:
    rows = [[w.name, *map(str, w.counts())] for w in found]
    if markdown:
        lines = ["| " + " | ".join(HEADER) + " |", "|---|" + "---:|" * (len(HEADER) - 1)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
    width = [max(len(r[i]) for r in [list(HEADER), *rows]) for i in range(len(HEADER))]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, width)))
    return "\n".join([line(HEADER), *(line(r) for r in rows)])


def modules_text(found: list[Walk]) -> str:
    seen = set().union(*(w.modules for w in found))
    return ", ".join(f"{m} ({LAYER_NAMES[layer_of(m)]})" for m in sorted(seen, key=lambda m: (-layer_of(m), m)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.walk", description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true", help="print each walk's moves")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="modelmux-walk-") as workdir:
        found, unstable = walks(trace(Path(workdir)))
    print(table(found, args.markdown))
    print()
    print(layers_text())
    print(f"Modules walked: {modules_text(found)}.")
    for problem in unstable:
        print(f"UNSTABLE: the two counted runs differ: {problem}")
    if args.verbose:
        for walk in found:
            print(f"\n{walk.name} (↑: back up a layer; s, c, l: shell, core, leaf)")
            print("\n".join(walk.lines()))
    return 1 if unstable else 0


if __name__ == "__main__":
    sys.exit(main())

"""The scenarios: latency, time to first token, stream throughput, concurrency, memory.

Each scenario takes the live targets and returns plain numbers (seconds, bytes, counts);
report.py turns them into the table. Every loop is bounded in count, and every wait on
the network in time.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Self

import httpx

from bench import upstreams
from bench.answers import Failed, check, expect
from bench.client import Body, Connection, Response
from bench.targets import CLAUDE_MODEL, POOL_CREDENTIALS, POOL_PROVIDER, TRANSLATIONS, Process, Target
from modelmux.addons.streams import Transform
from modelmux.translate import gemini, openai_chat, openai_responses
from modelmux.translate.passthrough import ModelRestorer

PATH = "/v1/messages"
REQUEST_TIMEOUT = 60.0  # seconds for any one request or burst

# The pure stream transform behind each modelmux target (by target key), with the
# context its gateway gives it; it is fed the stream upstreams.PROTOCOLS[key] sends.
_TRANSLATED = {t.protocol: t for t in TRANSLATIONS}
_CHAT, _RESPONSES, _GEMINI = (_TRANSLATED[p] for p in ("openai-chat", "openai-responses", "gemini"))
STREAM_TRANSFORMS: dict[str, Callable[[], Transform]] = {
    "anthropic": lambda: ModelRestorer(CLAUDE_MODEL),
    "openai-chat": lambda: openai_chat.ChatStream(openai_chat.Context(model=_CHAT.model, input_tokens=upstreams.INPUT_TOKENS)),
    "openai-responses": lambda: openai_responses.ResponsesStream(openai_responses.Context(
        model=_RESPONSES.model, input_tokens=upstreams.INPUT_TOKENS, upstream_model=_RESPONSES.upstream_model)),
    "gemini": lambda: gemini.GeminiStream(gemini.Context(model=_GEMINI.model, input_tokens=upstreams.INPUT_TOKENS)),
}  # fmt: skip


@dataclass(frozen=True)
class Plan:
    """How much of each scenario to run; QUICK is a smoke run."""

    warmup: int = 30
    rounds: int = 400  # latency samples per target, per mode
    stream_events: int = 50  # text deltas in a streamed latency answer
    ttft_rounds: int = 200
    ttft_delay_ms: int = 20
    failover_rounds: int = 200
    inprocess_events: int = 20_000
    inprocess_repeat: int = 5
    gateway_events: int = 20_000
    gateway_repeat: int = 2
    concurrency: tuple[int, ...] = (50, 200)
    concurrent_events: int = 500
    memory_requests: int = 5_000
    memory_parallel: int = 8


QUICK = Plan(warmup=10, rounds=60, ttft_rounds=30, failover_rounds=30, inprocess_events=5_000, inprocess_repeat=3,
             gateway_events=5_000, gateway_repeat=1, concurrent_events=200, memory_requests=500)  # fmt: skip


@dataclass
class Live:
    """A target as it runs: the port it answers on and the process that serves it."""

    target: Target
    port: int
    process: Process | None  # the gateway; None for the upstream itself
    connection: Connection = field(init=False)
    bodies: dict[bool, Body] = field(init=False)

    def __post_init__(self) -> None:
        self.connection = Connection(self.port)
        self.bodies = {stream: Body(self.target.model, stream) for stream in (False, True)}


def controls(events: int, delay_ms: int = 0) -> str:
    """The upstream's instructions, for Body.next."""
    return f" events={events}" + (f" first-delay-ms={delay_ms}" if delay_ms else "")


async def _request(live: Live, stream: bool, events: int, delay_ms: int = 0,
                   connection: Connection | None = None, more: str = "") -> Response:
    connection = connection or live.connection
    body = live.bodies[stream].next(controls(events, delay_ms) + more)
    response = await asyncio.wait_for(connection.post(PATH, body), REQUEST_TIMEOUT)
    check(live.target, response, stream, events)
    return response


async def verify(lives: list[Live]) -> None:
    """Each target's JSON and streamed answer, checked whole (answers.expect), once
    before anything is timed."""
    events = upstreams.DEFAULT_EVENTS
    for live in lives:
        for stream in (False, True):
            response = await _request(live, stream, events)
            expect(live.target.key, response.body, stream, events, live.target.model if live.target.restores_model else None)


# -- latency and time to first token ------------------------------------------------------


async def _rounds[C: Hashable](cases: list[C], rounds: int, sample: Callable[[C], Awaitable[float]]) -> dict[C, list[float]]:
    """`sample` of each case, in rounds that visit every case once in a fresh random order
    (drift on a shared machine hits all alike)."""
    samples: dict[C, list[float]] = {case: [] for case in cases}
    order = list(cases)
    for _ in range(rounds):
        random.shuffle(order)
        for case in order:
            samples[case].append(await sample(case))
    return samples


async def latency(lives: list[Live], plan: Plan) -> dict[tuple[str, bool], list[float]]:
    """Seconds to the last byte, JSON and streamed, per target and mode."""
    by_key = {live.target.key: live for live in lives}

    async def sample(case: tuple[str, bool]) -> float:
        key, stream = case
        return (await _request(by_key[key], stream, plan.stream_events)).elapsed

    cases = [(key, stream) for key in by_key for stream in (False, True)]
    await _rounds(cases, plan.warmup, sample)
    return await _rounds(cases, plan.rounds, sample)


async def ttft(lives: list[Live], plan: Plan) -> dict[str, list[float]]:
    """Seconds from sending to the first content_block_delta, minus the upstream's hold."""
    by_key = {live.target.key: live for live in lives}

    async def sample(key: str) -> float:
        response = await _request(by_key[key], True, 8, plan.ttft_delay_ms)
        assert response.first_content is not None
        return response.first_content - plan.ttft_delay_ms / 1000

    return await _rounds(list(by_key), plan.ttft_rounds, sample)


async def failover(live: Live, plan: Plan) -> dict[tuple[bool, bool], list[float]]:
    """Seconds to the last byte through the pool target, keyed (stream, failed over). A
    failed-over request's first credential answers 429 at once and the second answers
    it; the gateway's own count of that credential's errors proves each such request
    failed over exactly once."""
    rejected = f" reject-key={next(iter(POOL_CREDENTIALS.values()))}"

    async def sample(case: tuple[bool, bool]) -> float:
        stream, failed = case
        return (await _request(live, stream, plan.stream_events, more=rejected if failed else "")).elapsed

    cases = [(stream, failed) for stream in (False, True) for failed in (False, True)]
    errors_before = _first_credential_errors(live)
    await _rounds(cases, plan.warmup, sample)
    samples = await _rounds(cases, plan.failover_rounds, sample)
    sent = 2 * (plan.warmup + plan.failover_rounds)
    if (failed_over := _first_credential_errors(live) - errors_before) != sent:
        raise Failed(f"{live.target.key}: {failed_over} of {sent} requests with a 429 on the first credential failed over")
    return samples


def _first_credential_errors(live: Live) -> int:
    """What modelmux counted as errors of the pool's first credential (its state endpoint)."""
    state = httpx.get(f"http://127.0.0.1:{live.port}/modelmux/credentials", timeout=5).raise_for_status().json()
    first = next(iter(POOL_CREDENTIALS))
    return next(c["errors"] for c in state["providers"][POOL_PROVIDER]["credentials"] if c["label"] == first)


# -- throughput ------------------------------------------------------------------------------


@dataclass
class Throughput:
    events_per_s: float
    cpu_per_event: float | None  # seconds of the serving process's CPU per event
    first_delta: float | None = None  # seconds to the fastest stream's first delta (through a target)
    last_byte: float | None = None  # and to its last byte


def inprocess(plan: Plan) -> dict[str, Throughput]:
    """Each pure stream transform fed a long realistic upstream stream in 4 KB pieces
    (best of plan.inprocess_repeat, one core)."""
    results = {}
    for key, make in STREAM_TRANSFORMS.items():
        events = upstreams.PROTOCOLS[key].events(plan.inprocess_events)
        data = b"".join(events)
        pieces = [data[i : i + 4096] for i in range(0, len(data), 4096)]
        best = float("inf")
        for _ in range(plan.inprocess_repeat):
            transform = make()
            start = time.perf_counter()
            out = [e for piece in pieces for e in transform.feed(piece)]
            out += transform.close()
            best = min(best, time.perf_counter() - start)
        expect(f"in-process {key}", b"".join(out), True, plan.inprocess_events, None)
        results[key] = Throughput(len(events) / best, best / len(events))
    return results


async def through_gateway(lives: list[Live], plan: Plan) -> dict[str, Throughput]:
    """One long stream at a time through each target: events/s at the client, the
    serving process's CPU per event, and when the first delta arrived (a gateway that
    buffered the stream would deliver it only at the end)."""
    results = {}
    for live in lives:
        best: Response | None = None
        cpu = 0.0
        for _ in range(plan.gateway_repeat):
            before = live.process.cpu_seconds() if live.process else 0.0
            response = await _request(live, True, plan.gateway_events)
            cpu += (live.process.cpu_seconds() - before) if live.process else 0.0
            if best is None or response.elapsed < best.elapsed:
                best = response
        assert best is not None
        per_event = cpu / (plan.gateway_events * plan.gateway_repeat) if live.process else None
        results[live.target.key] = Throughput(plan.gateway_events / best.elapsed, per_event, best.first_content, best.elapsed)
    return results


# -- concurrency -----------------------------------------------------------------------------


@dataclass
class Burst:
    requests: int
    completed: int
    latencies: list[float]  # seconds, completed requests only
    cpu_seconds: float | None
    peak_rss_mb: float | None
    errors: list[str]


class RssSampler:
    """Samples a process's RSS every `interval` seconds until stopped; keeps the peak."""

    def __init__(self, process: Process | None, interval: float = 0.02) -> None:
        self.process, self.interval, self.peak = process, interval, 0.0
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        assert self.process
        while True:
            self.peak = max(self.peak, self.process.rss_mb())
            await asyncio.sleep(self.interval)

    def __enter__(self) -> Self:
        if self.process:
            self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task:
            self._task.cancel()
        if self.process:
            self.peak = max(self.peak, self.process.rss_mb())


async def burst(live: Live, concurrent: int, events: int) -> Burst:
    """`concurrent` streamed requests at once, each on its own keep-alive connection
    (opened and used once beforehand, so the burst measures streaming, not TCP set-up)."""
    connections = [Connection(live.port) for _ in range(concurrent)]
    try:
        opening = asyncio.Semaphore(50)

        async def warm(connection: Connection) -> None:
            async with opening:
                await _request(live, True, 1, connection=connection)

        await asyncio.wait_for(asyncio.gather(*(warm(c) for c in connections)), REQUEST_TIMEOUT)
        bodies = [live.bodies[True].next(controls(events)) for _ in connections]
        cpu_before = live.process.cpu_seconds() if live.process else None
        with RssSampler(live.process) as sampler:
            tasks = [asyncio.create_task(c.post(PATH, b)) for c, b in zip(connections, bodies)]
            _, pending = await asyncio.wait(tasks, timeout=REQUEST_TIMEOUT)
            for task in pending:
                task.cancel()
        cpu = live.process.cpu_seconds() - cpu_before if live.process and cpu_before is not None else None
        latencies, errors = [], []
        for task in tasks:
            if task in pending:
                errors.append("timed out")
                continue
            try:
                response = task.result()
                check(live.target, response, True, events)
                latencies.append(response.elapsed)
            except Exception as e:  # noqa: BLE001 - every failure is counted and shown
                errors.append(f"{type(e).__name__}: {e}")
        peak = sampler.peak if live.process else None
        return Burst(concurrent, len(latencies), latencies, cpu, peak, errors)
    finally:
        for connection in connections:
            connection.close()


# -- memory ----------------------------------------------------------------------------------


@dataclass
class Memory:
    fresh_mb: float
    before_mb: float  # after the warm-up
    middle_mb: float  # after half the requests
    after_mb: float
    requests: int
    seconds: float


async def memory(live: Live, plan: Plan, warmup: int = 100) -> Memory:
    """RSS of a fresh gateway, after a warm-up, and after plan.memory_requests realistic
    non-streamed requests (plan.memory_parallel connections at a time)."""
    assert live.process
    fresh = live.process.rss_mb()
    connections = [Connection(live.port) for _ in range(plan.memory_parallel)]

    async def run(total: int) -> None:
        async def worker(connection: Connection, count: int) -> None:
            for _ in range(count):
                await _request(live, False, upstreams.DEFAULT_EVENTS, connection=connection)

        share, extra = divmod(total, len(connections))
        await asyncio.gather(*(worker(c, share + (i < extra)) for i, c in enumerate(connections)))

    try:
        await run(warmup)
        before = live.process.rss_mb()
        start = time.perf_counter()
        half = plan.memory_requests // 2
        await asyncio.wait_for(run(half), 600)
        middle = live.process.rss_mb()
        await asyncio.wait_for(run(plan.memory_requests - half), 600)
        seconds = time.perf_counter() - start
        await asyncio.sleep(0.2)
        return Memory(fresh, before, middle, live.process.rss_mb(), plan.memory_requests, seconds)
    finally:
        for connection in connections:
            connection.close()

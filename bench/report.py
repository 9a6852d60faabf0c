"""The table: one row per metric, one column per target, and a verdict per target.

Latencies are shown as milliseconds above the floor (direct to the upstream) and as a
ratio to bare mitmdump's own overhead, measured in the same run; the floor's own
column has absolute times.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from bench.measure import Burst, Memory, Throughput
from bench.targets import DIRECT, MITMDUMP_BARE, POOL, REDIS_POOL, Target


@dataclass(frozen=True)
class Limits:
    """What a modelmux target's latency is held to."""

    ratio: float  # added p50 / bare mitmdump's
    ttft_extra_ms: float  # TTFT p50 added beyond bare mitmdump's
    first_delta_share: float | None = None  # first delta of the long stream by this share of its last byte


# Issue 19's targets, for every modelmux path, the failover relay's included: a pool
# of accounts or a fallback is the normal case for the people modelmux is for. The
# relay holds a stream until its first real event, so it is also held to streaming
# progressively (a buffered stream's first delta arrives at its end).
ISSUE = Limits(ratio=1.5, ttft_extra_ms=1.5)
RELAY = Limits(ratio=ISSUE.ratio, ttft_extra_ms=ISSUE.ttft_extra_ms, first_delta_share=0.1)
LIMITS = {POOL.key: RELAY, REDIS_POOL.key: RELAY}
# Issue 20: what sharing the pools' state on Redis may add to a request, at the median,
# on loopback (the Redis column against the pool column of the same run).
REDIS_EXTRA_MS = 0.5
MIN_EVENTS_PER_S = 100_000  # the pure stream translator, per core
MAX_GROWTH_MB = 50.0  # RSS growth over the memory run, mitmdump
NONE = "—"
NOTES = [
    (
        "Absolute times vary by machine; compare the ratios. Each latency cell is the target's "
        "percentile minus the floor's (direct to the upstream) in ms, and in brackets that "
        "divided by the baseline mitmdump's, from the same run."
    ),
    (
        "Baseline: `mitmdump --mode reverse` with a 3-line addon that streams event-stream answers "
        "from their headers on, as modelmux does (mitmdump alone buffers whole answers)."
    ),
    "Request: {request}. Every request's last text differs, like a new turn.",
    (
        "The fake upstream writes each event with its own send, as a model does, so the gateways "
        "read (and pay for) events one at a time."
    ),
    (
        "The translated columns' upstream speaks each protocol as its real API does (Chat chunks and "
        "their usage chunk; Responses' typed events, numbered; Gemini's whole responses per event, "
        "framed by CRLF CRLF). Before any timing, each target's JSON and streamed answer is checked "
        "whole: the upstream's text as one complete Anthropic message, with its stop reason and usage."
    ),
    (
        "The pool column is the anthropic passthrough with two credentials on its provider, so every "
        "request goes through modelmux's failover relay (mitmproxy → relay on loopback → its Sender → "
        "upstream) instead of being sent by mitmproxy; its verdict uses targets set for that extra hop."
    ),
    (
        "The Redis column is the pool column with its state shared through a local redis-server "
        "(`state: {{backend: redis}}`) and round-robin instead of fill-first, so every request also takes "
        "the fleet's turn from Redis; the Redis rows are its latency minus the pool column's."
    ),
    (
        "The other modelmux columns run `mitmdump -q -s addons/router.py`; the `modelmux serve` columns "
        "run what a user runs: `modelmux serve --config ROUTES --port PORT`, the launcher's command line "
        "(mitmdump without -q, so it prints modelmux's line per request and its log), writing to a terminal."
    ),
]


def pct(values: list[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 100]."""
    if not values:
        return math.nan
    ordered = sorted(values)
    at = (len(ordered) - 1) * q / 100
    low = math.floor(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


@dataclass
class Results:
    targets: list[Target]
    latency: dict[tuple[str, bool], list[float]] = field(default_factory=dict)
    stream_events: int = 0
    failover: dict[tuple[bool, bool], list[float]] = field(default_factory=dict)  # (stream, failed over), POOL only
    ttft: dict[str, list[float]] = field(default_factory=dict)
    ttft_delay_ms: int = 0
    inprocess: dict[str, Throughput] = field(default_factory=dict)
    gateway: dict[str, Throughput] = field(default_factory=dict)
    gateway_events: int = 0
    bursts: dict[tuple[int, str], Burst] = field(default_factory=dict)
    burst_events: int = 0
    memory: dict[tuple[str, str], Memory] = field(default_factory=dict)  # (mitmdump|mitmweb, target key)
    mitmweb_retention: str = ""
    request: str = ""  # what the realistic request holds
    request_kb: int = 0


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]  # a row of one cell is a section title

    def plain(self) -> str:
        width = [max(len(r[i]) for r in [self.header, *self.rows] if len(r) > 1) for i in range(len(self.header))]
        line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, width)))
        out = [line(self.header), "  ".join("-" * w for w in width)]
        for row in self.rows:
            out.append(row[0] if len(row) == 1 else line(row))
        return "\n".join(out)

    def markdown(self) -> str:
        out = ["| " + " | ".join(self.header) + " |", "|" + "---|" + "---:|" * (len(self.header) - 1)]
        for row in self.rows:
            cells = [f"**{row[0]}**"] + [""] * (len(self.header) - 1) if len(row) == 1 else [row[0].strip(), *row[1:]]
            out.append("| " + " | ".join(cells) + " |")
        return "\n".join(out)


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}"


class Report:
    def __init__(self, results: Results) -> None:
        self.r = results
        self.keys = [t.key for t in results.targets]

    def table(self) -> Table:
        rows = (self._latency_rows() + self._redis_rows() + self._failover_rows() + self._throughput_rows()
                + self._burst_rows() + self._memory_rows())  # fmt: skip
        return Table(["metric"] + [t.label for t in self.r.targets], rows)

    def _answers(self) -> tuple[tuple[bool, str], ...]:
        return (False, "JSON answer"), (True, f"stream of {self.r.stream_events} deltas, last byte")

    def _latency_rows(self) -> list[list[str]]:
        r, rows = self.r, []
        if r.latency:
            rows.append([f"Added latency, {r.request_kb} KB Claude Code request (ms above direct; × the baseline mitmdump's)"])
            for stream, what in self._answers():
                for q in (50, 90):
                    rows.append([f"  {what}, p{q}"] + [self._added(lambda k, s=stream: r.latency.get((k, s)), k, q) for k in self.keys])
        if r.ttft:
            rows.append([f"Time to first token added (first content_block_delta minus the upstream's {r.ttft_delay_ms} ms hold)"])
            for q in (50, 90):
                rows.append([f"  p{q}"] + [self._added(lambda k: r.ttft.get(k), k, q) for k in self.keys])
        return rows

    def redis_extra(self, stream: bool, q: int) -> float | None:
        """Seconds the Redis column adds to the pool column's percentile `q`."""
        shared, alone = self.r.latency.get((REDIS_POOL.key, stream)), self.r.latency.get((POOL.key, stream))
        return pct(shared, q) - pct(alone, q) if shared and alone else None

    def _redis_rows(self) -> list[list[str]]:
        rows = []
        if self.r.latency and REDIS_POOL.key in self.keys:
            rows.append([f"Shared state on Redis: ms added to the pool column's (p50 ≤ {REDIS_EXTRA_MS})"])
            for stream, what in self._answers():
                for q in (50, 90):
                    extra = self.redis_extra(stream, q)
                    rows.append([f"  {what}, p{q}"] + [f"{extra * 1e3:+.2f}" if k == REDIS_POOL.key and extra is not None
                                                       else NONE for k in self.keys])
        return rows

    def _failover_rows(self) -> list[list[str]]:
        r, rows = self.r, []
        if r.failover:
            rows.append([("One failover: the pool's first credential answers 429 at once, the second answers "
                          "(ms added to the same request without the 429)")])  # fmt: skip
            for stream, what in self._answers():
                for q in (50, 90):
                    added = pct(r.failover[stream, True], q) - pct(r.failover[stream, False], q)
                    rows.append([f"  {what}, p{q}"] + [f"{added * 1e3:+.2f}" if k == POOL.key else NONE for k in self.keys])
        return rows

    def _throughput_rows(self) -> list[list[str]]:
        r, rows = self.r, []
        if r.inprocess or r.gateway:
            rows.append(["Streaming throughput"])
        if r.inprocess:
            rows.append(["  stream transform in-process, events/s"] + [self._rate(r.inprocess.get(k)) for k in self.keys])
            rows.append(["  stream transform in-process, µs/event"]
                        + [f"{r.inprocess[k].cpu_per_event * 1e6:.2f}" if k in r.inprocess else NONE for k in self.keys])
        if r.gateway:
            rows.append([f"  one {r.gateway_events:,}-delta stream, events/s at the client"] + [self._rate(r.gateway.get(k)) for k in self.keys])
            rows.append([f"  one {r.gateway_events:,}-delta stream, first delta / last byte, ms"] + [
                self._first_and_last(r.gateway.get(k)) for k in self.keys])  # fmt: skip
            rows.append(["  gateway CPU per streamed event, µs"] + [
                f"{r.gateway[k].cpu_per_event * 1e6:.1f}" if k in r.gateway and r.gateway[k].cpu_per_event is not None else NONE
                for k in self.keys])  # fmt: skip
        return rows

    def _burst_rows(self) -> list[list[str]]:
        r, rows = self.r, []
        for level in sorted({level for level, _ in r.bursts}):
            rows.append([f"{level} concurrent streams of {r.burst_events} deltas"])
            bursts = [r.bursts.get((level, k)) for k in self.keys]
            floor = r.bursts.get((level, DIRECT.key))
            rows.append(["  completed"] + [f"{b.completed}/{b.requests}" if b else NONE for b in bursts])
            for q in (50, 90, 99):
                rows.append([f"  last byte p{q}, ms (added)"] + [self._burst_latency(b, floor, q) for b in bursts])
            rows.append(["  gateway CPU s / peak RSS MB"] + [
                f"{b.cpu_seconds:.2f} s / {b.peak_rss_mb:.0f}" if b and b.cpu_seconds is not None and b.peak_rss_mb else NONE
                for b in bursts])  # fmt: skip
        return rows

    def _memory_rows(self) -> list[list[str]]:
        r, rows = self.r, []
        if r.memory:
            count = next(iter(r.memory.values())).requests
            rows.append([f"Gateway RSS, MB: after a 100-request warm-up → after {count // 2:,} → after {count:,} JSON requests (growth)"])
            for program, label in (("mitmdump", "mitmdump"), ("mitmweb", f"mitmweb ({r.mitmweb_retention})")):
                if any(p == program for p, _ in r.memory):
                    rows.append([f"  {label}"] + [self._memory(r.memory.get((program, k))) for k in self.keys])
        return rows

    # -- cells ------------------------------------------------------------------------------

    def _added(self, samples_of, key: str, q: int) -> str:
        samples, floor, bare = samples_of(key), samples_of(DIRECT.key), samples_of(MITMDUMP_BARE.key)
        if not samples or not floor:
            return NONE
        if key == DIRECT.key:
            return f"{_ms(pct(samples, q))} ms"
        added = pct(samples, q) - pct(floor, q)
        if not bare or key == MITMDUMP_BARE.key:
            return f"+{_ms(added)}"
        return f"+{_ms(added)} ({self._ratio(added, pct(bare, q) - pct(floor, q))})"

    @staticmethod
    def _ratio(added: float, bare: float) -> str:
        return f"{added / bare:.2f}×" if bare > 0 else "n/a"

    @staticmethod
    def _rate(throughput: Throughput | None) -> str:
        if throughput is None:
            return NONE
        rate = throughput.events_per_s
        return f"{rate / 1e6:.2f} M" if rate >= 1e6 else f"{rate / 1e3:.1f} k"

    @staticmethod
    def _first_and_last(throughput: Throughput | None) -> str:
        if throughput is None or throughput.first_delta is None or throughput.last_byte is None:
            return NONE
        return f"{throughput.first_delta * 1e3:.1f} / {throughput.last_byte * 1e3:.0f}"

    @staticmethod
    def _burst_latency(burst: Burst | None, floor: Burst | None, q: int) -> str:
        if burst is None or not burst.latencies:
            return NONE
        value = pct(burst.latencies, q)
        if floor is None or burst is floor or not floor.latencies:
            return f"{value * 1e3:.0f}"
        return f"{value * 1e3:.0f} (+{(value - pct(floor.latencies, q)) * 1e3:.0f})"

    @staticmethod
    def _memory(memory: Memory | None) -> str:
        if memory is None:
            return NONE
        growth = memory.after_mb - memory.before_mb
        return f"{memory.before_mb:.0f} → {memory.middle_mb:.0f} → {memory.after_mb:.0f} ({growth:+.0f})"

    def notes(self) -> list[str]:
        return [note.format(request=self.r.request) for note in NOTES] + self.serve_notes()

    def serve_notes(self) -> list[str]:
        """What `modelmux serve` adds to the script its twin column runs, in the same run."""
        r, lines = self.r, []
        labels = {t.key: t.label for t in r.targets}
        for target in r.targets:
            if target.twin is None:
                continue
            key, twin, parts = target.key, target.twin, []
            for samples, what in [(lambda k, s=stream: r.latency.get((k, s)), f"{name} p50")
                                  for stream, name in ((False, "JSON"), (True, "stream"))] + [(r.ttft.get, "TTFT p50")]:  # fmt: skip
                served, script, floor = samples(key), samples(twin), samples(DIRECT.key)
                if served and script and floor:
                    added, base = pct(served, 50) - pct(floor, 50), pct(script, 50) - pct(floor, 50)
                    parts.append(f"{what} {(added - base) * 1e3:+.2f} ms ({self._ratio(added, base)} the script's added latency)")
            if (served := r.gateway.get(key)) and (script := r.gateway.get(twin)) and served.cpu_per_event and script.cpu_per_event:
                parts.append(f"CPU per streamed event {served.cpu_per_event * 1e6:.1f} µs against {script.cpu_per_event * 1e6:.1f}")
            for level in sorted({level for level, _ in r.bursts}):
                served_burst, script_burst = r.bursts.get((level, key)), r.bursts.get((level, twin))
                if served_burst and script_burst and served_burst.cpu_seconds and script_burst.cpu_seconds:
                    parts.append(f"CPU for {level} concurrent streams {served_burst.cpu_seconds:.2f} s against {script_burst.cpu_seconds:.2f} s")
            if parts:
                lines.append(f"{target.label} against {labels[twin]} (the script): {'; '.join(parts)}.")
        return lines

    # -- verdicts --------------------------------------------------------------------------

    def verdicts(self) -> list[str]:
        lines = []
        for target in self.r.targets:
            if not target.is_gateway:
                continue
            checks = self._checks(target)
            if checks:
                ok = all(passed for _, passed in checks)
                shown = "; ".join(f"{'✓' if passed else '✗'} {text}" for text, passed in checks)
                lines.append(f"{'PASS' if ok else 'FAIL'}  {target.label}: {shown}")
        return lines

    def _checks(self, target: Target) -> list[tuple[str, bool]]:
        r, key = self.r, target.key
        checks: list[tuple[str, bool]] = []
        modelmux = target.is_modelmux
        limits = LIMITS.get(key, ISSUE)
        if modelmux and r.latency:
            for stream, what in ((False, "JSON"), (True, "stream")):
                added, bare = (pct(r.latency[(k, stream)], 50) - pct(r.latency[(DIRECT.key, stream)], 50)
                               for k in (key, MITMDUMP_BARE.key))  # fmt: skip
                ratio = added / bare if bare > 0 else math.inf
                checks.append((f"{what} p50 {ratio:.2f}× mitmdump's (≤ {limits.ratio}×)", ratio <= limits.ratio))
        if key == REDIS_POOL.key and r.latency:
            for stream, what in ((False, "JSON"), (True, "stream")):
                extra = self.redis_extra(stream, 50)
                if extra is not None:
                    checks.append((f"Redis adds {extra * 1e3:+.2f} ms to the pool's {what} p50 (≤ {REDIS_EXTRA_MS})",
                                   extra * 1e3 <= REDIS_EXTRA_MS))
        if modelmux and r.ttft:
            extra = (pct(r.ttft[key], 50) - pct(r.ttft[MITMDUMP_BARE.key], 50)) * 1e3
            checks.append((f"TTFT p50 {extra:+.2f} ms vs mitmdump's (≤ {limits.ttft_extra_ms:g})", extra <= limits.ttft_extra_ms))
        share = limits.first_delta_share
        if share is not None and (long := r.gateway.get(key)) and long.first_delta is not None and long.last_byte:
            shown = f"streams progressively: first delta at {long.first_delta * 1e3:.1f} of {long.last_byte * 1e3:.0f} ms (≤ {share:.0%})"
            checks.append((shown, long.first_delta <= share * long.last_byte))
        if modelmux and key in r.inprocess:
            rate = r.inprocess[key].events_per_s
            checks.append((f"stream transform {rate / 1e3:,.0f}k events/s (≥ {MIN_EVENTS_PER_S // 1000}k)", rate >= MIN_EVENTS_PER_S))
        for (level, k), burst in sorted(self.r.bursts.items()):
            if k == key:
                checks.append((f"{burst.completed}/{burst.requests} concurrent streams", burst.completed == burst.requests))
        if (memory := r.memory.get(("mitmdump", key))) is not None:
            growth = memory.after_mb - memory.before_mb
            checks.append((f"mitmdump RSS {growth:+.0f} MB (< {MAX_GROWTH_MB:g})", growth < MAX_GROWTH_MB))
        if modelmux and (memory := r.memory.get(("mitmweb", key))) is not None:
            late = memory.after_mb - memory.middle_mb
            checks.append((f"mitmweb RSS {late:+.0f} MB over the second half (bounded: < {MAX_GROWTH_MB:g})", late < MAX_GROWTH_MB))
        return checks

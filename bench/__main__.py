"""`python -m bench [--quick] [--markdown] [--skip SCENARIO ...]`: modelmux's overhead, one table.

Starts a fake upstream, bare mitmdump and modelmux in front of it, measures every
target side by side (and what one failover adds, through the credential pool), prints
the table and a verdict per target against the issue's targets. Every process it
starts is stopped on the way out, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import signal
import sys
import tempfile
import time
from pathlib import Path

from mitmproxy.version import VERSION

from bench import against, measure
from bench.measure import Live, Plan
from bench.report import Report, Results
from bench.targets import (
    GATEWAY_ARGS,
    POOL,
    TARGETS,
    Gateway,
    Process,
    RedisProcess,
    ServeGateway,
    Target,
    UpstreamProcess,
    max_flows_supported,
)

SCENARIOS = ("latency", "failover", "ttft", "throughput", "concurrency", "memory")
MAX_FLOWS = 500


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    cores = len(os.sched_getaffinity(0))
    return f"{cpu}, {cores} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}, mitmproxy {VERSION}"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Bench:
    def __init__(self, plan: Plan, skip: set[str], workdir: Path, stack: contextlib.ExitStack) -> None:
        self.plan, self.skip, self.workdir, self.stack = plan, skip, workdir, stack
        self.results = Results(TARGETS)
        self.redis: RedisProcess | None = None

    def start[P: Process](self, process: P) -> P:
        self.stack.callback(process.stop)
        process.start()
        return process

    def gateway(self, target: Target, upstream: int, name: str, web: bool = False) -> Gateway:
        assert target.gateway
        if target.gateway == "serve":
            assert not web, "`modelmux serve --web` is not measured"
            return self.start(ServeGateway(name, upstream, self.workdir))
        extra = ["--set", f"modelmux_max_flows={MAX_FLOWS}"] if web and target.gateway == "modelmux" and max_flows_supported() else []
        gateway = Gateway(name, upstream, self.workdir, modelmux=target.gateway == "modelmux", web=web,
                          extra=GATEWAY_ARGS[target.gateway] + extra,
                          redis_url=self.redis.url if target.shared_state and self.redis else None)
        self.start(gateway)
        return gateway

    async def run(self) -> Results:
        plan, results = self.plan, self.results
        if "throughput" not in self.skip:
            log("stream transforms in-process")
            results.inprocess = measure.inprocess(plan)
        upstream = self.start(UpstreamProcess(self.workdir / "upstream.log"))
        if any(t.shared_state for t in TARGETS):
            self.redis = self.start(RedisProcess(self.workdir))
        # A gateway process of its own per target: a process that serves more of the
        # requests answers each sooner. With the five modelmux columns sharing one, each
        # added about 1.4 ms less to a JSON answer (p50) than alone, while bare mitmdump,
        # alone either way, stayed: the shared process flattered every ratio to it.
        gateways = {t.key: self.gateway(t, upstream.port, t.key) for t in TARGETS if t.gateway}
        lives = [Live(t, gateways[t.key].port if t.key in gateways else upstream.port, gateways.get(t.key)) for t in TARGETS]
        log("answers: one JSON and one stream per target, checked whole")
        await measure.verify(lives)
        results.stream_events = plan.stream_events
        results.request = lives[0].bodies[False].summary
        results.request_kb = round(lives[0].bodies[False].size / 1000)
        if "latency" not in self.skip:
            log(f"latency: {plan.rounds} rounds × {len(lives)} targets × JSON and stream")
            results.latency = await measure.latency(lives, plan)
        if "failover" not in self.skip:
            log(f"one failover: {plan.failover_rounds} rounds through {POOL.label}, JSON and stream, with and without")
            results.failover = await measure.failover(next(live for live in lives if live.target is POOL), plan)
        if "ttft" not in self.skip:
            log(f"time to first token: {plan.ttft_rounds} rounds")
            results.ttft_delay_ms = plan.ttft_delay_ms
            results.ttft = await measure.ttft(lives, plan)
        if "throughput" not in self.skip:
            log(f"one {plan.gateway_events}-delta stream through each target")
            results.gateway_events = plan.gateway_events
            results.gateway = await measure.through_gateway(lives, plan)
        for live in lives:
            live.connection.close()
        if "concurrency" not in self.skip:
            results.burst_events = plan.concurrent_events
            for level in plan.concurrency:
                for live in lives:
                    log(f"{level} concurrent streams through {live.target.label}")
                    results.bursts[level, live.target.key] = await measure.burst(live, level, plan.concurrent_events)
        for gateway in gateways.values():
            gateway.stop()
        if "memory" not in self.skip:
            await self.memory(upstream.port)
        return results

    async def compare(self, rev: str) -> dict:
        """The modelmux columns from this checkout and from REV's tree (bench/against.py)."""
        tree = against.export(rev, self.workdir / "against")
        upstream = self.start(UpstreamProcess(self.workdir / "upstream.log"))
        log(f"{len(against.COMPARED)} modelmux columns, each from this checkout and from {rev}")
        return await against.measure_both(rev, tree, upstream.port, self.workdir, self.plan, self.skip, self.start)

    async def memory(self, upstream: int) -> None:
        """A fresh gateway per program and target, stopped before the next starts."""
        with_max_flows = max_flows_supported()
        self.results.mitmweb_retention = f"modelmux_max_flows={MAX_FLOWS}" if with_max_flows else "no retention limit yet"
        for program in ("mitmdump", "mitmweb"):
            for target in TARGETS:
                if not target.is_gateway or (program == "mitmweb" and target.gateway != "modelmux"):
                    continue
                log(f"memory: {self.plan.memory_requests} requests through {program} ({target.label})")
                gateway = self.gateway(target, upstream, f"memory-{program}-{target.key}", web=program == "mitmweb")
                try:
                    self.results.memory[program, target.key] = await measure.memory(Live(target, gateway.port, gateway), self.plan)
                finally:
                    gateway.stop()


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM cleans up like Ctrl-C does."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: fewer requests and events")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown (for docs/benchmarks.md)")
    # extend: `--skip a --skip b` leaves out both (nargs="*" alone kept only the last)
    parser.add_argument("--skip", nargs="*", action="extend", default=[], choices=SCENARIOS, help="scenarios to leave out")
    parser.add_argument("--against", metavar="REV", help="this checkout's modelmux against REV's (a git revision), side by "
                                                         "side, requests interleaved: latency and ttft only")
    args = parser.parse_args(argv)
    if args.against and (why := against.unknown(args.against)):
        parser.error(f"--against {args.against}: {why}")
    plan = measure.QUICK if args.quick else Plan()
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="modelmux-bench-") as workdir, contextlib.ExitStack() as stack:
        bench = Bench(plan, set(args.skip), Path(workdir), stack)
        try:
            if args.against:
                compared = asyncio.run(bench.compare(args.against))
            else:
                results = asyncio.run(bench.run())
        except KeyboardInterrupt:
            log("interrupted; stopping every process the bench started")
            return 130
        except Exception:
            for log_file in sorted(Path(workdir).glob("*.log")):
                if text := log_file.read_text(errors="replace").strip():
                    print(f"--- {log_file.name} (last lines)\n" + "\n".join(text.splitlines()[-15:]), file=sys.stderr)
            raise
    elapsed = time.monotonic() - started
    print(f"`python -m bench{' --quick' if args.quick else ''}{f' --against {args.against}' if args.against else ''}` on "
          f"{machine()}, {time.strftime('%Y-%m-%d')}, run time {divmod(round(elapsed), 60)[0]} min "
          f"{divmod(round(elapsed), 60)[1]} s.\n")  # fmt: skip
    if args.against:
        table = against.table(compared, args.against)
        print(table.markdown() if args.markdown else table.plain())
        return 0
    report = Report(results)
    table = report.table()
    print(table.markdown() if args.markdown else table.plain())
    print()
    bullet = "- " if args.markdown else ""
    for line in report.verdicts():
        print(f"{bullet}{line}")
    print()
    for note in report.notes():
        print(f"{bullet}{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

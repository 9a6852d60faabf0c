"""`python -m bench --against REV`: this checkout's modelmux and REV's, side by side.

Runs taken one after the other cannot tell most changes apart on a shared machine: on
the 2-core VM of docs/benchmarks.md, one tree's JSON answer moved between 2.9 and 3.9 ms
over six runs (issue 19, seventh round). Here each modelmux column runs twice, from
REV's tree (exported with `git archive`) and from the checkout's, beside the floor and
bare mitmdump; the latency and first-token rounds visit all of them in a fresh random
order each round (measure._rounds), so whatever the machine does hits both trees
alike. Both trees get the same routes.yaml, the checkout's bench's.
"""

from __future__ import annotations

import random
import re
import subprocess
import tarfile
from dataclasses import replace
from pathlib import Path

from bench import measure
from bench.measure import Live, Plan
from bench.report import Table, pct
from bench.targets import DIRECT, GATEWAY_ARGS, MITMDUMP_BARE, POOL, PASSTHROUGH, REPO, TRANSLATED, Gateway, Target

COMPARED = [PASSTHROUGH, POOL, *TRANSLATED]


def unknown(rev: str) -> str | None:
    """Why REV cannot be compared against, or None when it names a commit."""
    found = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
                           capture_output=True, text=True)
    return None if found.returncode == 0 else f"not a commit of {REPO}"


def export(rev: str, into: Path) -> Path:
    """REV's tree, as committed, under `into`; raises CalledProcessError naming REV if git
    does not know it."""
    into.mkdir(parents=True)
    archive = into.with_suffix(".tar")
    with archive.open("wb") as out:
        subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", rev], stdout=out, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    archive.unlink()
    return into


def at(target: Target, rev: str) -> Target:
    """`target` as REV's tree runs it."""
    return replace(target, key=f"{target.key}@{rev}", label=f"{target.label} @ {rev}")


async def measure_both(rev: str, tree: Path, upstream: int, workdir: Path, plan: Plan, skip: set[str],
                       start) -> dict:
    """Samples of every target and its REV twin: `start` starts a process and stops it on
    the way out (Bench.start)."""
    targets: list[tuple[Target, Path]] = [(t, REPO) for t in COMPARED] + [(at(t, rev), tree) for t in COMPARED]
    random.shuffle(targets)  # in `--against HEAD` runs, the gateways started first looked slower
    lives = [Live(DIRECT, upstream, None)]
    gateways: dict[str, Gateway] = {}
    for target, repo in [(MITMDUMP_BARE, REPO), *targets]:
        assert target.gateway
        name = re.sub(r"[^\w.-]", "_", target.key)  # REV may hold a "/"
        gateway = start(Gateway(name, upstream, workdir, modelmux=target.gateway == "modelmux",
                                extra=GATEWAY_ARGS[target.gateway], repo=repo))
        gateways[target.key] = gateway
        lives.append(Live(target, gateway.port, gateway))
    await measure.verify(lives)
    results: dict = {"latency": {}, "ttft": {}, "cpu": {}}
    if "latency" not in skip:
        before = {key: gateway.cpu_seconds() for key, gateway in gateways.items()}
        results["latency"] = await measure.latency(lives, plan)
        requests = 2 * (plan.warmup + plan.rounds)  # JSON and stream, each round
        results["cpu"] = {key: (gateway.cpu_seconds() - before[key]) / requests for key, gateway in gateways.items()}
    if "ttft" not in skip:
        results["ttft"] = await measure.ttft(lives, plan)
    for live in lives:
        live.connection.close()
    return results


def table(results: dict, rev: str) -> Table:
    """Per modelmux target: REV's p50 and the checkout's, each in ms above the floor and
    as a ratio to bare mitmdump's, and what the checkout changed."""
    latency, ttft, cpu = results["latency"], results["ttft"], results["cpu"]
    header = ["p50, ms above direct (× mitmdump's)", *[t.label.removeprefix("modelmux → ") for t in COMPARED]]
    rows: list[list[str]] = []
    trees = ((rev, lambda t: at(t, rev).key), ("this checkout", lambda t: t.key))  # each tree's name, its targets' keys

    def section(title: str, samples_of) -> None:
        floor, bare = samples_of(DIRECT.key), samples_of(MITMDUMP_BARE.key)
        if not floor:
            return
        base = pct(floor, 50)
        baseline = pct(bare, 50) - base
        rows.append([f"{title} (mitmdump +{baseline * 1e3:.2f})"])
        cells = {}
        for name, key_of in trees:
            cells[name] = [pct(samples_of(key_of(t)), 50) - base for t in COMPARED]
            rows.append([f"  {name}"] + [f"+{v * 1e3:.2f} ({v / baseline:.2f}×)" for v in cells[name]])
        rows.append(["  change"] + [f"{(now - then) * 1e3:+.2f} ms" + (f" ({(now / then - 1) * 100:+.1f}%)" if then > 0 else "")
                                    for then, now in zip(cells[rev], cells["this checkout"], strict=True)])

    section("JSON answer", lambda key: latency.get((key, False), []))
    section("stream of 50 deltas, last byte", lambda key: latency.get((key, True), []))
    section("time to first token", lambda key: ttft.get(key, []))
    if cpu:
        rows.append(["gateway CPU per request, latency rounds (JSON and stream), ms"])
        for name, key_of in trees:
            rows.append([f"  {name}"] + [f"{cpu[key_of(t)] * 1e3:.2f}" for t in COMPARED])
        rows.append([f"  mitmdump: {cpu[MITMDUMP_BARE.key] * 1e3:.2f}"])
    return Table(header, rows)

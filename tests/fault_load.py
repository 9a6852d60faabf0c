"""Many requests at once through the real gateway to llmock upstreams that fail on
purpose (issue 16 §1's measurements), counted the way a client sees them.

Used by tests/test_llmock_faults.py with a bounded number of requests, and as a script
for the full measurement: `python tests/fault_load.py [SCENARIO ...] [--requests N]
[--concurrency C]` prints one line per scenario. Scenarios:

- 503: one provider, three keys, 5 % of answers 503 with Retry-After: 1 (llmock puts one
  on every 503); the relay sends it.
- 503-single: the same with one key; mitmproxy sends it.
- 503-fallback: the three-key provider with a backup provider (also 5 % 503) as fallback.
- mix: a flaky provider (three keys, 30 requests a minute each, 10 % 429 and 10 % 503,
  both with Retry-After: 1, and 10 % of streams dropped after message_start) with a
  healthier fallback (one key, 2 % 503).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from gateway import Gateway
from llmock.chaos import ChaosSettings, StreamChaos
from llmock.ratelimit import LimitSettings
from llmock.testing import LLMockServer

SCENARIOS = ("503", "503-single", "503-fallback", "mix")
KEYS = {"k1": "sk-llmock-fault-key-1-aaaa", "k2": "sk-llmock-fault-key-2-bbbb", "k3": "sk-llmock-fault-key-3-cccc",
        "backup": "sk-llmock-fault-backup-dddd"}
CLIENT_KEY = "sk-ant-fault-client-eeee"
LATENCY_MS = 50  # per answer: keeps requests really in flight together
# What a client can get: an answer, a stream that broke off or failed after it began,
# the upstream's own error after attempts, or a refusal made without asking anyone.
ANSWERED, BROKEN, UPSTREAM, REFUSED = "answered", "broken", "upstream error", "refused without an attempt"
# The gateway's own words when it refuses without sending (refusals.py, outcomes.summary).
_REFUSALS = ("no credential of provider", "every credential of provider", "(0 attempts)")
_ATTEMPTS = re.compile(r"^no upstream could serve model .*? \((\d+) attempts?\)")


def _credentials(*labels: str) -> str:
    return "[" + ", ".join(f"{{label: {x}, key: '${{FAULT_{x.upper()}}}'}}" for x in labels) + "]"


def routes(flaky: str, backup: str) -> str:
    """routes.yaml for every scenario: `pool-*` to three keys at `flaky`, `single-*` to one
    key there, `fallback-*` to the three keys with a provider at `backup` as fallback."""
    return f"""
providers:
  flaky:
    protocol: anthropic
    base_url: "{flaky}"
    auth: "x-api-key: {{key}}"
    credentials: {_credentials("k1", "k2", "k3")}
  flaky-single:
    protocol: anthropic
    base_url: "{flaky}"
    auth: "x-api-key: {{key}}"
    credentials: {_credentials("k1")}
  backup:
    protocol: anthropic
    base_url: "{backup}"
    auth: "x-api-key: {{key}}"
    credentials: {_credentials("backup")}
routes:
  - {{match: "pool-*", provider: flaky}}
  - {{match: "single-*", provider: flaky-single}}
  - {{match: "fallback-*", provider: flaky, fallback: [{{provider: backup, model: backup-model}}]}}
default: null
"""


ENV = {f"FAULT_{label.upper()}": key for label, key in KEYS.items()}
MODELS = {"503": "pool-1", "503-single": "single-1", "503-fallback": "fallback-1", "mix": "fallback-1"}


def apply(scenario: str, flaky: LLMockServer, backup: LLMockServer) -> None:
    """Set the scenario's faults on both servers, with nothing left of an earlier one."""
    for server in (flaky, backup):
        server.state.reset()
        server.state.limiter.configure(LimitSettings())
        server.state.stream_chaos = StreamChaos()
    if scenario == "mix":
        flaky.state.chaos = ChaosSettings(latency_ms=LATENCY_MS, error_rate_429=0.10, error_rate_503=0.10)
        flaky.state.limiter.configure(LimitSettings(rpm=30))
        flaky.state.stream_chaos = StreamChaos(fault_rates=(("disconnect", 0.10),), max_after_chunks=1)
        backup.state.chaos = ChaosSettings(latency_ms=LATENCY_MS, error_rate_503=0.02)
    else:
        flaky.state.chaos = backup.state.chaos = ChaosSettings(latency_ms=LATENCY_MS, error_rate_503=0.05)


@contextmanager
def running(directory: Path) -> Iterator[tuple[LLMockServer, LLMockServer, Gateway]]:
    """Both llmock servers and a gateway in front of them."""
    with LLMockServer() as flaky, LLMockServer() as backup:
        text = routes(flaky.base_url("anthropic"), backup.base_url("anthropic"))
        with Gateway(directory, text, ENV) as gateway:
            yield flaky, backup, gateway


def classify(status: int, content_type: str, raw: bytes) -> str:
    if status == 200 and content_type.startswith("text/event-stream"):
        names = [line[7:] for line in raw.decode(errors="replace").splitlines() if line.startswith("event: ")]
        return ANSWERED if names[-1:] == ["message_stop"] and "error" not in names else BROKEN
    if status == 200:
        try:
            return ANSWERED if json.loads(raw).get("type") == "message" else BROKEN
        except ValueError:
            return BROKEN
    message = json.loads(raw)["error"]["message"]
    # After attempts, the summary also says why the providers it could not try were
    # skipped ("every credential of provider ... is rate limited"): not a refusal.
    if (attempts := _ATTEMPTS.search(message)) and attempts.group(1) != "0":
        return UPSTREAM
    return REFUSED if any(words in message for words in _REFUSALS) else UPSTREAM


async def _one(client: httpx.AsyncClient, model: str, rid: int) -> str:
    body = {"model": model, "max_tokens": 32, "stream": rid % 2 == 1,
            "messages": [{"role": "user", "content": f"request {rid}"}]}
    try:
        async with client.stream("POST", "/v1/messages", json=body) as response:
            raw = await response.aread()
    except httpx.HTTPError:
        return BROKEN  # the connection broke: a stream cut off
    return classify(response.status_code, response.headers.get("content-type", ""), raw)


async def fire(url: str, model: str, requests: int, concurrency: int) -> Counter[str]:
    """`requests` requests for `model`, half of them streamed, `concurrency` at a time."""
    pending = iter(range(requests))
    tally: Counter[str] = Counter()

    async def worker(client: httpx.AsyncClient) -> None:
        for rid in pending:
            tally[await _one(client, model, rid)] += 1

    async with httpx.AsyncClient(base_url=url, timeout=60, trust_env=False, headers={"x-api-key": CLIENT_KEY},
                                 limits=httpx.Limits(max_connections=concurrency)) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return tally


@dataclass
class Measured:
    scenario: str
    tally: Counter[str]
    seconds: float
    upstream: dict[str, Counter[int]]  # llmock's journal: statuses it answered, per server

    def line(self) -> str:
        total = sum(self.tally.values())
        counts = ", ".join(f"{name} {self.tally[name]}" for name in (ANSWERED, UPSTREAM, REFUSED, BROKEN))
        seen = "; ".join(f"{name} {dict(sorted(statuses.items()))}" for name, statuses in self.upstream.items())
        return (f"{self.scenario}: {self.tally[ANSWERED]}/{total} answered ({counts}) in {self.seconds:.1f} s; "
                f"the upstreams answered {seen}")


def measure(scenario: str, requests: int, concurrency: int, flaky: LLMockServer, backup: LLMockServer,
            gateway: Gateway) -> Measured:
    apply(scenario, flaky, backup)
    gateway.reset_credentials()
    started = time.monotonic()
    tally = asyncio.run(fire(gateway.url, MODELS[scenario], requests, concurrency))
    seconds = time.monotonic() - started
    seen = {name: Counter(r.status for r in server.state.journal.records())
            for name, server in (("flaky", flaky), ("backup", backup))}
    return Measured(scenario, tally, seconds, seen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", default=list(SCENARIOS), help=", ".join(SCENARIOS))
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=30)
    args = parser.parse_args()
    if unknown := set(args.scenarios) - set(SCENARIOS):
        parser.error(f"unknown scenarios {sorted(unknown)}; choose from {', '.join(SCENARIOS)}")
    with tempfile.TemporaryDirectory() as directory, running(Path(directory)) as (flaky, backup, gateway):
        for scenario in args.scenarios:
            print(measure(scenario, args.requests, args.concurrency, flaky, backup, gateway).line(), flush=True)


if __name__ == "__main__":
    main()

"""Load: a few thousand requests, dozens at once, through the real gateway to two pools
of credentials on fault-injecting upstreams (tests/load_upstream.py).

Every request must end in an answer or a proper Anthropic error, and in the one its
attempts call for; no key may reach the other provider's upstream; the pools take
turns; the gateway's per-credential counters match what the upstreams received. One
run (the module fixture) feeds every test, and `-s` prints its figures. It takes about
half a minute on two cores; pyproject.toml registers no marker for it, so leave it out
with `--deselect tests/test_load.py` when that is too long.
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from gateway import Gateway
from load_upstream import INPUT_TOKENS, OUTPUT_TOKENS, Attempt, FakeUpstream, Fault, FaultPlan, listening_socket

SEED = 20250615
CONCURRENCY = 64
CLEAN = 240  # request ids below this get no faults, so the pools' turns can be checked exactly
REQUESTS = 2000  # with faults, after the clean ones
TIMEOUT = 30.0  # per request; answers come within a few seconds here, so reaching it is a hang
MAX_ATTEMPTS = 4  # the gateway's default server.max_attempts
# Seconds an upstream thinks before its first byte (a stream then takes 0.3 s more). It
# keeps CONCURRENCY requests really open at once, and holds the run near 100 req/s
# however fast the machine, so cooldowns (1 to 10 s) weigh about the same in every run.
THINK = (0.2, 0.6)
# Per attempt: one in ten fails, so failover and fallback happen a few hundred times.
WEIGHTS: dict[Fault, float] = {
    "ok": 0.90, "429-retry-after": 0.02, "429": 0.003, "500": 0.015, "503": 0.01,
    "drop": 0.02, "break-early": 0.015, "break-late": 0.017,
}
# A rate-limit storm in the middle of the run: most attempts are refused, so whole pools
# cool at once and clients get the gateway's own 429s, with and without attempts.
STORM = range(CLEAN + REQUESTS // 2, CLEAN + REQUESTS // 2 + 200)
STORM_WEIGHTS: dict[Fault, float] = {"ok": 0.4, "429-retry-after": 0.6}
POLL = 0.25  # seconds between looks at GET /modelmux/credentials during the run

ZAI_KEYS = {"zai-load-key-1-aaaaaaaa": "z1", "zai-load-key-2-bbbbbbbb": "z2", "zai-load-key-3-cccccccc": "z3"}
OAI_KEYS = {"sk-oai-load-1-dddddddd": "o1", "sk-oai-load-2-eeeeeeee": "o2", "sk-oai-load-3-ffffffff": "o3",
            "sk-oai-load-4-gggggggg": "o4"}
CLIENT_KEY = "sk-ant-load-client-key-never-upstream"
ALL_KEYS = [*ZAI_KEYS, *OAI_KEYS, CLIENT_KEY]
ENV = {f"LOAD_KEY_{label.upper()}": key for key, label in {**ZAI_KEYS, **OAI_KEYS}.items()}
GLM, GPT = "glm-4.6", "gpt-4o-mini"


def creds(keys: dict[str, str]) -> str:
    return "[" + ", ".join(f"{{label: {label}, key: '${{LOAD_KEY_{label.upper()}}}'}}" for label in keys.values()) + "]"


def routes(zai: int, oai: int) -> str:
    return f"""
providers:
  zai:
    protocol: anthropic
    base_url: "http://127.0.0.1:{zai}"
    auth: "x-api-key: {{key}}"
    credentials: {creds(ZAI_KEYS)}
  oai:
    protocol: openai-chat
    base_url: "http://127.0.0.1:{oai}/v1"
    credentials: {creds(OAI_KEYS)}
routes:
  - {{match: "glm-*", provider: zai, fallback: [{{provider: oai, model: {GPT}}}]}}
  - {{match: "gpt-*", provider: oai}}
"""


def mix(rid: int) -> tuple[str, bool]:
    """Request `rid`'s model and whether it streams: the four kinds in turn."""
    return (GLM if rid % 4 < 2 else GPT), rid % 2 == 1


# -- the client's side ------------------------------------------------------------------


@dataclass
class Result:
    rid: int
    model: str
    stream: bool
    kind: str  # "answer", "broken stream" (event: error after a started stream), "error" or "invalid"
    status: int | None = None
    detail: str = ""  # the error type, or what made the result invalid
    served_by: str | None = None  # the credential label a complete answer names
    retry_after: str | None = None
    seconds: float = 0.0


ANSWER = re.compile(r"answer (\d+) from (\w+)")
ERROR_TYPES = {429: "rate_limit_error", 500: "api_error", 502: "api_error", 503: "overloaded_error",
               504: "timeout_error", 529: "overloaded_error"}
COMPLETE = ["message_start", "content_block_start", "content_block_delta", "content_block_stop",
            "message_delta", "message_stop"]


def judge(result: Result, response: httpx.Response, raw: bytes) -> Result:
    """What the client got, checked against the Messages API's shapes."""
    result.status = response.status_code
    seen = raw + repr(list(response.headers.items())).encode()
    if leaked := [key for key in ALL_KEYS if key.encode() in seen]:
        return _invalid(result, f"the answer carries a key: {leaked}")
    content_type = response.headers.get("content-type", "")
    if response.status_code == 200 and content_type.startswith("text/event-stream"):
        return _judge_stream(result, raw)
    if not content_type.startswith("application/json"):
        return _invalid(result, f"HTTP {response.status_code} {content_type}: {raw[:200]!r}")
    body = json.loads(raw)
    if response.status_code == 200:
        text = "".join(b.get("text", "") for b in body.get("content", []))
        if body.get("type") != "message" or body.get("model") != result.model:
            return _invalid(result, f"not a message for {result.model}: {raw[:200]!r}")
        return _answered(result, text)
    error = body.get("error") if body.get("type") == "error" else None
    if not isinstance(error, dict) or not isinstance(error.get("message"), str) or len(body) != 2:
        return _invalid(result, f"HTTP {response.status_code} without an Anthropic error envelope: {raw[:200]!r}")
    if error.get("type") != ERROR_TYPES.get(response.status_code):
        return _invalid(result, f"HTTP {response.status_code} with error type {error.get('type')}")
    result.retry_after = response.headers.get("retry-after")
    if result.retry_after is not None and not (result.retry_after.isdigit() and int(result.retry_after) >= 1):
        return _invalid(result, f"Retry-After {result.retry_after!r} is not a whole number of seconds")
    result.kind, result.detail = "error", error["type"]
    return result


def _judge_stream(result: Result, raw: bytes) -> Result:
    events = []
    for block in raw.decode().split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((fields.get("event"), json.loads(fields["data"])))
    events = [(name, data) for name, data in events if name != "ping"]
    names = [name for name, _ in events]
    if not result.stream:
        return _invalid(result, f"a stream for a request that did not ask for one: {names}")
    if names[:1] != ["message_start"] or events[0][1]["message"]["model"] != result.model:
        return _invalid(result, f"a stream that does not open with message_start for {result.model}: {names[:3]}")
    text = "".join(d["delta"].get("text", "") for name, d in events if name == "content_block_delta")
    if "error" in names:
        error = events[-1][1]
        if (names.count("error") != 1 or names[-1] != "error" or "message_stop" in names
                or not set(names) & {"content_block_start", "content_block_delta"}
                or error.get("type") != "error" or error["error"].get("type") != "api_error"):
            return _invalid(result, f"a broken stream that is not message_start, content, one error: {names}")
        result.kind, result.detail = "broken stream", error["error"]["message"]
        return result
    if [n for i, n in enumerate(names) if i == 0 or n != names[i - 1]] != COMPLETE:
        return _invalid(result, f"an incomplete or disordered stream: {names}")
    return _answered(result, text)


def _answered(result: Result, text: str) -> Result:
    found = ANSWER.fullmatch(text)
    if not found or int(found.group(1)) != result.rid:
        return _invalid(result, f"request {result.rid} got someone else's answer: {text!r}")
    result.kind, result.served_by = "answer", found.group(2)
    return result


def _invalid(result: Result, why: str) -> Result:
    result.kind, result.detail = "invalid", why
    return result


async def send(client: httpx.AsyncClient, rid: int) -> Result:
    model, stream = mix(rid)
    result = Result(rid, model, stream, "invalid")
    body = {"model": model, "max_tokens": 64, "stream": stream,
            "messages": [{"role": "user", "content": f"load-request-{rid}"}]}
    started = time.monotonic()
    try:
        async with asyncio.timeout(TIMEOUT):
            async with client.stream("POST", "/v1/messages", json=body) as response:
                raw = await response.aread()
        return judge(result, response, raw)
    except (ValueError, KeyError, TypeError, IndexError) as e:
        return _invalid(result, f"an answer that does not parse: {e!r}")
    except TimeoutError:
        return _invalid(result, f"no complete answer within {TIMEOUT:g} s (a hang)")
    except httpx.HTTPError as e:
        return _invalid(result, f"the gateway broke the connection: {e!r}")
    finally:
        result.seconds = time.monotonic() - started


async def fire(client: httpx.AsyncClient, rids: range) -> list[Result]:
    """`rids` with CONCURRENCY requests in flight at all times."""
    pending = iter(rids)
    results: list[Result] = []

    async def worker() -> None:
        for rid in pending:
            results.append(await send(client, rid))

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return sorted(results, key=lambda r: r.rid)


# -- the run ----------------------------------------------------------------------------


@dataclass
class Run:
    results: dict[int, Result]
    attempts: dict[int, list[Attempt]]  # by request id, both upstreams, in arrival order
    zai: FakeUpstream
    oai: FakeUpstream
    pools: dict  # GET /modelmux/credentials after the run
    seconds: float  # of the faulted phase
    states: dict[str, Counter[str]] = field(default_factory=dict)  # label → state → polls that saw it
    cooldowns: Counter[str] = field(default_factory=Counter)  # kind → polls that saw one

    def upstream(self, name: str) -> FakeUpstream:
        return {"zai": self.zai, "oai": self.oai}[name]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    plan = FaultPlan(SEED, WEIGHTS, clean_below=CLEAN, storm=STORM, storm_weights=STORM_WEIGHTS, think=THINK)
    zai = FakeUpstream("zai", "anthropic", ZAI_KEYS, plan)
    oai = FakeUpstream("oai", "openai-chat", OAI_KEYS, plan)
    zai_sock, oai_sock = listening_socket(), listening_socket()
    text = routes(zai_sock.getsockname()[1], oai_sock.getsockname()[1])
    snapshots: list[dict] = []

    async def watch(gateway: Gateway) -> None:
        async with httpx.AsyncClient(base_url=gateway.url, trust_env=False) as client:
            while True:
                snapshots.append((await client.get("/modelmux/credentials")).json())
                await asyncio.sleep(POLL)

    async def drive(gateway: Gateway) -> tuple[list[Result], float]:
        await zai.start(zai_sock)
        await oai.start(oai_sock)
        headers = {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"}
        limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
        try:
            async with httpx.AsyncClient(base_url=gateway.url, headers=headers, limits=limits,
                                         timeout=TIMEOUT + 5, trust_env=False) as client:
                clean = await fire(client, range(CLEAN))
                started = time.monotonic()
                watcher = asyncio.create_task(watch(gateway))
                loaded = await fire(client, range(CLEAN, CLEAN + REQUESTS))
                watcher.cancel()
                return clean + loaded, time.monotonic() - started
        finally:
            await zai.stop()
            await oai.stop()

    with Gateway(tmp_path_factory.mktemp("load"), text, ENV) as gateway:
        results, seconds = asyncio.run(drive(gateway))
        pools = gateway.credentials()
    attempts: dict[int, list[Attempt]] = defaultdict(list)
    for attempt in sorted(zai.attempts + oai.attempts, key=lambda a: a.at):
        attempts[attempt.rid].append(attempt)
    done = Run({r.rid: r for r in results}, dict(attempts), zai, oai, pools, seconds)
    for snapshot in snapshots:
        for credential in (c for p in snapshot["providers"].values() for c in p["credentials"]):
            done.states.setdefault(credential["label"], Counter())[credential["state"]] += 1
            done.cooldowns.update(c["kind"] for c in credential["cooldowns"])
    report(done)
    yield done


def report(run: Run) -> None:
    results = list(run.results.values())
    outcomes = Counter(f"{r.kind} {r.status}" if r.kind == "error" else r.kind for r in results)
    tries = Counter(len(run.attempts.get(rid, [])) for rid in run.results if rid >= CLEAN)
    fallbacks = sum(1 for rid, found in run.attempts.items()
                    if mix(rid)[0] == GLM and any(a.upstream == "oai" for a in found))
    seconds = sorted(r.seconds for r in results if r.rid >= CLEAN)
    faults = Counter(a.fault for a in run.zai.attempts + run.oai.attempts)
    print(f"\nload: {len(results)} requests ({CLEAN} without faults, then {REQUESTS} with), {CONCURRENCY} at "
          f"once; the {REQUESTS} took {run.seconds:.1f} s = {REQUESTS / run.seconds:.0f} req/s")
    print(f"  client outcomes: {dict(sorted(outcomes.items()))}")
    print(f"  latency with faults: median {statistics.median(seconds) * 1000:.0f} ms, "
          f"p99 {seconds[int(len(seconds) * 0.99)] * 1000:.0f} ms, max {seconds[-1] * 1000:.0f} ms")
    print(f"  attempts reaching upstreams: zai {len(run.zai.attempts)}, oai {len(run.oai.attempts)} "
          f"(most at once: zai {run.zai.peak}, oai {run.oai.peak})")
    print(f"  attempts per request with faults: {dict(sorted(tries.items()))}; failovers (>1 attempt): "
          f"{sum(n for k, n in tries.items() if k > 1)}; glm requests that fell back to oai: {fallbacks}")
    print(f"  what the upstreams did with the attempts: {dict(sorted(faults.items()))}")
    for name in ("zai", "oai"):
        counts = shares(run, name)
        total = sum(counts.values())
        print(f"  {name} shares with faults: " + ", ".join(f"{k} {n} ({n / total:.1%})" for k, n in counts.items()))
    polls = sum(next(iter(run.states.values()), Counter()).values())
    print(f"  credential states over {polls} polls: "
          + "; ".join(f"{label} {dict(states)}" for label, states in run.states.items()))


def shares(run: Run, upstream: str, clean: bool = False) -> dict[str, int]:
    """Attempts per credential label at `upstream`, in the clean phase or the faulted one."""
    fake = run.upstream(upstream)
    counted = Counter(a.label for a in fake.attempts if (a.rid < CLEAN) == clean)
    return {label: counted[label] for label in fake.keys.values()}


Expected = tuple[str, int | None, str | None, bool | None]  # kind, status, label, a Retry-After or not
# The status of the upstream's own error, which the client gets when a request's attempts
# all went to one credential and its pool had nothing more to offer; a broken connection
# is the gateway's 502.
OWN_STATUS: dict[Fault, int] = {"429-retry-after": 429, "429": 429, "500": 500, "503": 503,
                                "drop": 502, "break-early": 502, "break-late": 502}
# Faults that say the host stumbled (docs/credentials.md): a credential that got one may be
# tried again in the request's second round.
HOST_ERRORS: set[Fault] = {"500", "503", "drop", "break-early", "break-late"}


def expected(run: Run, rid: int) -> Expected:
    """What the client must get, from what the upstreams did with the request's attempts:
    (kind, status, the label an answer names, whether a Retry-After comes; None: either).

    The last attempt's answer if it answered. Else the upstream's own error (with the
    upstream's Retry-After, if it named one) if every attempt went to one credential and
    no pool refused before trying (only possible for gpt-*: a glm-* request that failed
    on zai always meets the oai pool, trying or refusing); else the gateway's summary or
    refusal: 429 when every attempt (if any) was rate limited, with a Retry-After when
    each named its wait (a 429 without one only orders its credential: it is sent again
    at once, unless another request's 429 blocked it meanwhile), 503 otherwise. A refusal before any try is always "every credential rate
    limited" here, because only a rate limit with a stated wait blocks a credential."""
    found = run.attempts.get(rid, [])
    last = found[-1] if found else None
    if last is not None and not last.failed:
        return ("answer", 200, last.label, None) if last.fault == "ok" else ("broken stream", 200, None, None)
    # Without a stated wait on every attempt, a Retry-After comes only if another
    # request's 429 blocked those credentials meanwhile: either may happen.
    if last is not None and len({a.label for a in found}) == 1 and mix(rid)[0] == GPT:
        return "error", OWN_STATUS[last.fault], None, True if last.fault == "429-retry-after" else None
    if all(a.fault.startswith("429") for a in found):
        return "error", 429, None, True if all(a.fault == "429-retry-after" for a in found) else None
    return "error", 503, None, None


def outcome(result: Result, want: Expected) -> Expected:
    """`result` in the terms of `expected`."""
    return result.kind, result.status, result.served_by, None if want[3] is None else result.retry_after is not None


# -- the tests ---------------------------------------------------------------------------


def test_every_request_ends_in_an_answer_or_a_proper_anthropic_error(run: Run) -> None:
    assert len(run.results) == CLEAN + REQUESTS
    invalid = [r for r in run.results.values() if r.kind == "invalid"]
    assert not invalid, f"{len(invalid)} requests ended badly, e.g. {invalid[:5]}"


def test_each_request_gets_what_its_attempts_call_for(run: Run) -> None:
    wrong = [
        (rid, want, outcome(r, want), [(a.upstream, a.label, a.fault) for a in run.attempts.get(rid, [])])
        for rid, r in run.results.items()
        if r.kind != "invalid" and outcome(r, want := expected(run, rid)) != want
    ]
    assert not wrong, f"{len(wrong)} requests got another outcome (rid, expected, got, attempts): {wrong[:5]}"


def test_failover_tries_each_credential_once_per_round_within_max_attempts_and_stops_at_an_answer(run: Run) -> None:
    """A round goes zai then oai for glm-* (at this fault rate no breaker opens); a second
    round, after host errors, the same way. Only a credential that got a host error is
    tried a second time, and never a third."""
    assert -1 not in run.attempts, "an upstream got a request without its id"
    for rid, found in run.attempts.items():
        model, _ = mix(rid)
        where = f"request {rid}: {[(a.upstream, a.label, a.fault) for a in found]}"
        assert len(found) <= MAX_ATTEMPTS, where
        assert all(a.failed for a in found[:-1]), f"tried again after an answer: {where}"
        providers = [a.upstream for a in found]
        if model == GLM:
            # zai, then the fallback; in a second round again (zai refused all along: oai only)
            turns = [p for i, p in enumerate(providers) if i == 0 or p != providers[i - 1]]
            assert turns[0] == "zai" or turns == ["oai"], f"oai before zai: {where}"
        else:
            assert set(providers) == {"oai"}, where
        for name in ("zai", "oai"):
            labels = [a.label for a in found if a.upstream == name]
            for label in set(labels):
                tries = [a for a in found if a.upstream == name and a.label == label]
                assert len(tries) <= 2 and all(a.fault in HOST_ERRORS for a in tries[:-1]), (
                    f"a credential tried again after no host error: {where}")


def test_no_credential_crosses_providers(run: Run) -> None:
    for fake, other in ((run.zai, run.oai), (run.oai, run.zai)):
        foreign = [*other.keys, CLIENT_KEY]
        for attempt in fake.attempts:
            assert attempt.label in fake.keys.values(), f"{fake.name} got key {attempt.key!r}"
            absent = {"authorization"} if fake.protocol == "anthropic" else {"x-api-key"}
            assert not absent & attempt.headers.keys(), f"{fake.name} got {absent & attempt.headers.keys()}"
            assert not [k for k in foreign if any(k in v for v in attempt.headers.values())], attempt.headers


def test_without_faults_the_credentials_take_strict_turns(run: Run) -> None:
    # Smooth weighted round-robin with equal weights is plain rotation while every
    # credential is usable, however many requests are in flight: the CLEAN / 2 requests
    # of each provider spread exactly evenly over its credentials.
    assert all(run.results[rid].kind == "answer" and len(run.attempts[rid]) == 1 for rid in range(CLEAN))
    assert shares(run, "zai", clean=True) == {"z1": CLEAN // 6, "z2": CLEAN // 6, "z3": CLEAN // 6}
    assert shares(run, "oai", clean=True) == {"o1": CLEAN // 8, "o2": CLEAN // 8, "o3": CLEAN // 8, "o4": CLEAN // 8}


# Under faults the turns are not exact: a credential sits out its cooldown (1 s after a
# 429 with Retry-After, 5 s without, 10 s after a 5xx or a broken connection unless
# nothing else is left). At this fault rate each credential is healthy in only about a
# fifth of the polls (printed), so a pool seldom has two to take turns, and its one
# healthy credential takes every request until it fails. Shares wander with the luck of
# each run: over 13 runs with 9 seeds, from 0.59 to 1.41 times the fair share. So the
# tolerance is ±60 % of fair: it catches a starved credential or one that hogs the pool,
# not a slight bias; strict turns are checked exactly above, without faults.
SHARE_BAND = (0.4, 1.6)  # times the fair share


@pytest.mark.parametrize("upstream", ["zai", "oai"])
def test_with_faults_no_credential_is_starved_or_hogs_the_pool(run: Run, upstream: str) -> None:
    counts = shares(run, upstream)
    fair = sum(counts.values()) / len(counts)
    low, high = SHARE_BAND
    assert all(low * fair <= n <= high * fair for n in counts.values()), (
        f"attempts per credential {counts}, fair {fair:.0f}: outside {low}-{high} times fair")


def test_load_faults_never_flag_a_credential_for_a_person(run: Run) -> None:
    """Rate limits, 5xx and broken connections cool a credential; only a refused key
    (401, 403) needs attention, and connect failures are the host's ("unreachable")."""
    assert run.states and all(set(states) <= {"healthy", "cooling", "unhealthy"} for states in run.states.values())
    assert set(run.cooldowns) <= {"rate_limit", "transient"}


@pytest.mark.parametrize("upstream", ["zai", "oai"])
def test_the_gateway_counts_what_the_upstream_received(run: Run, upstream: str) -> None:
    fake = run.upstream(upstream)
    by_label: dict[str, list[Attempt]] = defaultdict(list)
    for attempt in fake.attempts:
        by_label[attempt.label or attempt.key].append(attempt)
    counted = {c["label"]: c for c in run.pools["providers"][upstream]["credentials"]}
    got = {label: {k: c[k] for k in ("requests", "errors", "in_flight", "input_tokens", "output_tokens")}
           for label, c in counted.items()}
    want = {}
    for label in fake.keys.values():
        found = by_label[label]
        answered = sum(1 for a in found if a.fault == "ok")
        want[label] = {"requests": len(found), "errors": len(found) - answered, "in_flight": 0,
                       "input_tokens": INPUT_TOKENS * answered, "output_tokens": OUTPUT_TOKENS * answered}
    assert got == want

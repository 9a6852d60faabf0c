"""Three gateways on one pool, sharing its state through a real redis-server (routes.yaml
`state: {backend: redis}`; docs/team.md): a 429's Retry-After keeps the whole fleet off
the key, the fleet spreads its requests as one gateway would, max_concurrent holds
fleet-wide, usage is the fleet's, a crashed gateway's slots expire, a login is
refreshed once for the fleet, and Redis killed mid-run fails no request."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import redis as sync_redis
from gateway import Gateway, all_running
from redis_server import RedisServer
from test_oauth_gateway import TokenEndpoint, token_file
from upstream import Received, Reply, Upstream, anthropic_like

KEYS = {"a": "key-fleet-aaaaaaaa-0001", "b": "key-fleet-bbbbbbbb-0002", "c": "key-fleet-cccccccc-0003",
        "one": "key-fleet-one-00000004"}
LABELS = {key: label for label, key in KEYS.items()}
ENV = {f"KEY_{label.upper()}": key for label, key in KEYS.items()}
GATEWAYS = 3


def routes(redis: RedisServer, pool: Upstream, limited: Upstream, prefix: str = "modelmux") -> str:
    return f"""
state: {{backend: redis, url: "${{MODELMUX_REDIS_URL}}", prefix: {prefix}, lease_seconds: 2}}
providers:
  zai:
    protocol: anthropic
    base_url: "{pool.url}"
    credentials:
      - {{label: a, key: "${{KEY_A}}"}}
      - {{label: b, key: "${{KEY_B}}"}}
      - {{label: c, key: "${{KEY_C}}"}}
  limited:
    protocol: anthropic
    base_url: "{limited.url}"
    credentials: [{{label: one, key: "${{KEY_ONE}}", max_concurrent: 1}}]
    max_wait: 60
routes:
  - {{match: "pool-*", provider: zai}}
  - {{match: "limited-*", provider: limited}}
"""


@pytest.fixture(scope="module")
def redis(tmp_path_factory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, Upstream]]:
    with Upstream() as pool, Upstream() as limited:
        yield {"pool": pool, "limited": limited}


@pytest.fixture(scope="module")
def fleet(redis, upstreams, tmp_path_factory) -> Iterator[tuple[Gateway, ...]]:
    text = routes(redis, upstreams["pool"], upstreams["limited"])
    env = {**ENV, "MODELMUX_REDIS_URL": redis.url}
    gateways = [Gateway(tmp_path_factory.mktemp(f"gateway{i}"), text, env) for i in range(GATEWAYS)]
    with all_running(*gateways):
        for gateway in gateways:
            wait_for(lambda g=gateway: g.health()["state"]["status"] == "connected", f"{gateway.url} connected")
        yield tuple(gateways)
    for gateway in gateways:
        quiet(gateway)


def quiet(gateway: Gateway) -> None:
    """Redis going away is logged as a warning, never as an exception or a secret."""
    log = gateway.log.read_text(errors="replace")
    assert "Traceback" not in log and "RuntimeWarning" not in log, log[-3000:]
    assert not any(key in log for key in KEYS.values())


@pytest.fixture(autouse=True)
def fresh(upstreams, fleet, redis) -> None:
    if redis.process is None or redis.process.poll() is not None:
        redis.start()
        for gateway in fleet:
            wait_for(lambda g=gateway: g.health()["state"]["status"] == "connected", "reconnected")
    fleet[0].reset_credentials()  # the fleet's cooldowns, every gateway's
    time.sleep(0.2)
    for server in upstreams.values():
        server.received.clear()
        server.reply = anthropic_like


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"never happened within {timeout} s: {what}")


def post(gateway: Gateway, model: str) -> httpx.Response:
    body = {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    return httpx.post(f"{gateway.url}/v1/messages", json=body, timeout=60)


def seen(upstream: Upstream) -> list[str]:
    return [LABELS.get(r.headers.get("x-api-key", ""), "?") for r in upstream.received]


def credential(gateway: Gateway, provider: str, label: str) -> dict:
    return next(c for c in gateway.credentials()["providers"][provider]["credentials"] if c["label"] == label)


def usage_total(gateway: Gateway) -> int:
    return httpx.get(f"{gateway.url}/modelmux/usage?days=1", timeout=5).json()["total"]["requests"]


def test_a_429_with_retry_after_on_one_gateway_keeps_the_others_off_the_key(fleet, upstreams):
    pool = upstreams["pool"]
    limited_once = iter([Reply(429, b'{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}',
                               {"content-type": "application/json", "retry-after": "30"})])
    pool.reply = lambda request: next(limited_once, None) or anthropic_like(request)
    assert post(fleet[0], "pool-1").status_code == 200  # a 429 for the key of its turn, then another key
    assert len(seen(pool)) == 2
    hit = seen(pool)[0]
    for other in fleet[1:]:
        wait_for(lambda g=other: credential(g, "zai", hit)["cooldowns"], "the cooldown reached every gateway")
        [cooldown] = credential(other, "zai", hit)["cooldowns"]
        assert (cooldown["kind"], cooldown["firm"], cooldown["status"]) == ("rate_limit", True, 429)
        assert 25 < cooldown["seconds_left"] <= 30  # its real expiry, not a fresh 30 s
    answers = [post(fleet[1 + i % 2], "pool-1").status_code for i in range(12)]
    assert answers == [200] * 12
    after = seen(pool)[2:]
    assert len(after) == 12 and hit not in after  # the upstream's own log
    shares = sorted(Counter(after).values())  # the other two share the fleet's turns (within the turns held)
    assert len(shares) == 2 and shares[1] - shares[0] <= 2, shares


def test_the_fleet_spreads_its_requests_over_the_pool_within_20_percent(fleet, upstreams):
    with ThreadPoolExecutor(12) as workers:
        answers = list(workers.map(lambda i: post(fleet[i % GATEWAYS], "pool-1").status_code, range(90)))
    assert answers == [200] * 90
    counts = Counter(seen(upstreams["pool"]))
    assert sorted(counts) == ["a", "b", "c"]
    assert max(counts.values()) - min(counts.values()) <= 0.2 * 30, counts


def concurrency_probe(upstream: Upstream, seconds: float) -> Callable[[], int]:
    """Make `upstream` take `seconds` per answer; returns the most answers it ever had
    under way at once."""
    lock = threading.Lock()
    state = {"now": 0, "most": 0}

    def reply(request: Received):
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        time.sleep(seconds)
        with lock:
            state["now"] -= 1
        return anthropic_like(request)

    upstream.reply = reply
    return lambda: state["most"]


def test_max_concurrent_1_holds_fleet_wide_under_30_concurrent_requests(fleet, upstreams):
    most = concurrency_probe(upstreams["limited"], 0.05)
    with ThreadPoolExecutor(30) as workers:
        answers = list(workers.map(lambda i: post(fleet[i % GATEWAYS], "limited-1").status_code, range(30)))
    assert answers == [200] * 30
    assert len(upstreams["limited"].received) == 30
    assert most() == 1, outages(fleet)


def outages(fleet: tuple[Gateway, ...]) -> list[str]:
    """What the gateways said about Redis: a loaded machine can make a call time out."""
    return [line for gateway in fleet for line in gateway.log.read_text().splitlines() if "Redis" in line]


def test_usage_on_every_gateway_is_the_fleets_and_equals_the_upstreams_count(fleet, upstreams):
    wait_for(lambda: len({usage_total(gateway) for gateway in fleet}) == 1, "every gateway shows the same fleet")
    before = [usage_total(gateway) for gateway in fleet]
    for i in range(21):
        assert post(fleet[i % GATEWAYS], "pool-1" if i % 3 else "limited-1").status_code == 200
    count = len(upstreams["pool"].received) + len(upstreams["limited"].received)
    assert count == 21
    for gateway in fleet:
        wait_for(lambda g=gateway: usage_total(g) == before[0] + count, f"{gateway.url}'s usage is the fleet's")


def test_a_crashed_gateways_slot_expires_and_the_fleet_goes_on(fleet, upstreams, redis, tmp_path):
    """A gateway killed with a request in flight on the max_concurrent: 1 key: after
    lease_seconds (2 s here) the others get the slot."""
    release = threading.Event()

    def reply(request: Received):
        if request.json()["messages"][0]["content"] == "hang":
            release.wait(30)
        return anthropic_like(request)

    upstreams["limited"].reply = reply
    text = routes(redis, upstreams["pool"], upstreams["limited"])
    doomed = Gateway(tmp_path, text, {**ENV, "MODELMUX_REDIS_URL": redis.url}).start()
    try:
        wait_for(lambda: doomed.health()["state"]["status"] == "connected", "the doomed gateway connected")
        body = {"model": "limited-1", "max_tokens": 16, "messages": [{"role": "user", "content": "hang"}]}
        def doomed_request() -> None:
            with contextlib.suppress(httpx.HTTPError):  # its gateway is killed under it
                httpx.post(f"{doomed.url}/v1/messages", json=body, timeout=30)

        threading.Thread(target=doomed_request, daemon=True).start()
        wait_for(lambda: len(upstreams["limited"].received) == 1, "the hanging request reached the upstream")
        assert doomed.process is not None
        doomed.process.send_signal(signal.SIGKILL)
        doomed.process.wait()
        started = time.monotonic()
        assert post(fleet[0], "limited-1").status_code == 200
        waited = time.monotonic() - started
        assert 0.5 < waited < 6, waited  # held until the crashed gateway's slot expired, then served
    finally:
        release.set()
        doomed.stop()


def test_redis_killed_mid_run_fails_no_request_and_the_fleet_recovers(fleet, upstreams, redis):
    pool = upstreams["pool"]
    before = usage_total(fleet[0])
    answers: list[int] = []
    for i in range(9):
        answers.append(post(fleet[i % GATEWAYS], "pool-1").status_code)
    redis.kill()
    for i in range(9):
        answers.append(post(fleet[i % GATEWAYS], "pool-1").status_code)
        answers.append(post(fleet[i % GATEWAYS], "limited-1").status_code)
    assert answers == [200] * 27  # no request failed because Redis did
    for gateway in fleet:
        wait_for(lambda g=gateway: g.health()["state"]["status"] == "degraded", "degraded")
        state = gateway.health()["state"]
        assert state["since"] and state["reason"] and state["server"] == redis.url.removeprefix("redis://")
    # While Redis is away a 429 is this gateway's alone ...
    pool.reply = lambda r: (Reply(429, b"{}", {"retry-after": "30"}) if LABELS.get(r.headers.get("x-api-key", "")) == "a"
                            else anthropic_like(r))
    pool.received.clear()
    while "a" not in seen(pool):
        assert post(fleet[0], "pool-1").status_code == 200
    upstream_count = 27 - 9 + len(pool.received) - seen(pool).count("a")  # answered requests since the kill
    redis.start()
    for gateway in fleet:
        wait_for(lambda g=gateway: g.health()["state"]["status"] == "connected", "connected again")
    # ... and the fleet's once Redis is back: the others keep off a as well.
    for other in fleet[1:]:
        wait_for(lambda g=other: any(c["firm"] for c in credential(g, "zai", "a")["cooldowns"]), "resynced cooldown")
    pool.received.clear()
    assert [post(fleet[1 + i % 2], "pool-1").status_code for i in range(6)] == [200] * 6
    assert "a" not in seen(pool)
    # Every request counted once, the ones served while Redis was away included.
    total = before + 9 + upstream_count + 6
    for gateway in fleet:
        wait_for(lambda g=gateway: usage_total(g) == total, f"usage after the outage ({usage_total(gateway)} vs {total})")


def test_a_stuck_redis_delays_at_most_one_request_per_gateway_by_its_timeouts(fleet, redis):
    """Redis stopped (SIGSTOP: connections stay open, nothing answers). A pool's request
    never waits for Redis; the first request for a max_concurrent slot on each gateway
    waits out the slot's timeout (0.25 s) and a recount's (2 s), and then none waits."""
    assert redis.process is not None
    redis.process.send_signal(signal.SIGSTOP)
    try:
        times = []
        for i in range(18):
            started = time.monotonic()
            assert post(fleet[i % GATEWAYS], "limited-1" if i % 2 else "pool-1").status_code == 200
            times.append(time.monotonic() - started)
        slow = [t for t in times if t > 1.5]  # a loaded machine is slow, but not this slow
        assert len(slow) <= GATEWAYS and max(times) < 5.0, times
        for gateway in fleet:
            assert gateway.health()["state"]["status"] == "degraded"
    finally:
        redis.process.send_signal(signal.SIGCONT)
    for gateway in fleet:
        wait_for(lambda g=gateway: g.health()["state"]["status"] == "connected", "connected again")


def test_a_login_is_refreshed_once_for_the_fleet_and_everyone_uses_the_new_token(redis, tmp_path):
    endpoint = TokenEndpoint()
    endpoint.delay = 0.3  # long enough for every gateway to want a refresh meanwhile
    with Upstream() as server:
        server.reply = lambda r: endpoint(r) if r.path == "/token" else anthropic_like(r)
        gateways = []
        for i in range(GATEWAYS):
            directory = tmp_path / f"gateway{i}"
            directory.mkdir()
            # Each gateway its own copy of the login, as on three machines; about to expire.
            path = token_file(directory, "max", "claude", f"{server.url}/token", expires_in=60)
            text = f"""
state: {{backend: redis, url: "{redis.url}", prefix: oauth-test}}
providers:
  subscription:
    protocol: anthropic
    base_url: "{server.url}"
    credentials: [{{label: max, oauth: "{path}"}}]
default: {{provider: subscription}}
"""
            gateways.append(Gateway(directory, text))
        with all_running(*gateways):
            for gateway in gateways:
                wait_for(lambda g=gateway: g.health()["state"]["status"] == "connected", "connected")
            with ThreadPoolExecutor(9) as workers:
                answers = list(workers.map(lambda i: post(gateways[i % GATEWAYS], "claude-sonnet-4").status_code,
                                           range(9)))
            assert answers == [200] * 9
            refreshes = [c for c in endpoint.calls if c.get("grant_type") == "refresh_token"]
            assert len(refreshes) == 1  # one gateway refreshed; a second would have used a rotated-away token
            used = {r.headers.get("authorization") for r in server.received if r.path != "/token"}
            assert used == {f"Bearer {endpoint.access_token}"}
            for gateway in gateways:
                stored = json.loads((gateway.config.parent / "max.json").read_text())
                assert (stored["access_token"], stored["refresh_token"]) == (endpoint.access_token, endpoint.refresh_token)
                assert endpoint.access_token not in gateway.log.read_text()
                assert endpoint.refresh_token not in gateway.log.read_text()


def test_redis_away_at_start_the_gateway_serves_and_says_so(upstreams, tmp_path):
    unused = RedisServer(tmp_path / "none")  # its port, with nothing listening
    text = routes(unused, upstreams["pool"], upstreams["limited"]).replace("${MODELMUX_REDIS_URL}", unused.url)
    with Gateway(tmp_path, text, ENV) as gateway:
        assert post(gateway, "pool-1").status_code == 200
        state = gateway.health()["state"]
        assert (state["backend"], state["status"], state["server"]) == ("redis", "degraded", f"127.0.0.1:{unused.port}/0")
        assert "Connection" in state["reason"] and state["next_try"]
        unused.start()
        try:
            wait_for(lambda: gateway.health()["state"]["status"] == "connected", "connected once Redis started")
        finally:
            unused.stop()
    quiet(gateway)


def test_redis_holds_no_key_of_the_pool(fleet, redis, upstreams):
    """What the fleet wrote (cooldowns, slots, turns, usage, after the tests above and
    one more 429 now) names credentials by provider and label, never by their keys."""
    upstreams["pool"].reply = lambda r: Reply(429, b"{}", {"retry-after": "30"})
    post(fleet[0], "pool-1")
    client = sync_redis.Redis.from_url(redis.url)
    try:
        wait_for(lambda: client.keys("modelmux:cooldown:*"), "a cooldown in Redis")
        names = client.keys("*")
        kinds = {name.decode().split(":")[1] for name in names}
        assert {"cooldown", "turn", "usage"} <= kinds, kinds
        dumped = b"".join(names) + b"".join(client.dump(name) or b"" for name in names)
    finally:
        client.close()
    assert not any(key.encode() in dumped for key in KEYS.values())

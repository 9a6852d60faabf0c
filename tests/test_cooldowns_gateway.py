"""The cooldown policy through the real gateway, on both send paths: `solo-1` has one
key and no fallback (mitmproxy sends it), `pool-1` three keys and `glm-1` three keys
and a fallback provider (the relay sends them). Host errors order keys and never
block them, a success clears that whenever its request began, and a provider's
breaker opens on a rate of errors (docs/credentials.md)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

import pytest

from test_failover import credential, error_reply, gateway, post, script, seen, upstreams  # noqa: F401 (fixtures)
from test_failover import fresh  # noqa: F401 (autouse fixture)
from upstream import Received, Reply, anthropic_like

BUSY = error_reply(503, "overloaded_error", "busy", **{"retry-after": "1"})


def first_then_normal(behaviour: Reply):
    """Per credential: `behaviour` for its first request, normal answers after."""
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    def reply(request: Received):
        key = request.headers.get("x-api-key", "")
        with lock:
            counts[key] += 1
            first = counts[key] == 1
        return behaviour if first else anthropic_like(request)

    return reply


def test_mitmproxy_sent_a_503_with_retry_after_goes_to_the_client_and_blocks_nothing(gateway, upstreams):
    """mitmproxy cannot send a request twice: the client gets the upstream's own 503 and
    Retry-After, and the next request goes to the key at once (Claude Code retries a
    5xx itself)."""
    upstreams["backup"].reply = first_then_normal(BUSY)
    first = post(gateway, "solo-1")
    assert (first.status_code, first.headers["retry-after"], first.json()["error"]) == (
        503, "1", {"type": "overloaded_error", "message": "busy"})
    [cooldown] = credential(gateway, "backup", "solo")["cooldowns"]
    assert (cooldown["kind"], cooldown["firm"]) == ("transient", False)
    assert post(gateway, "solo-1").status_code == 200
    assert seen(upstreams["backup"]) == ["solo", "solo"]
    assert credential(gateway, "backup", "solo")["cooldowns"] == []  # the success cleared it


def test_relayed_503s_on_every_key_get_a_second_round_after_the_upstreams_wait(gateway, upstreams):
    upstreams["pool"].reply = first_then_normal(BUSY)
    started = time.monotonic()
    response = post(gateway, "pool-1")
    assert response.status_code == 200 and time.monotonic() - started >= 1.0  # Retry-After: 1, honoured
    assert seen(upstreams["pool"]) == ["a", "b", "c", "a"]  # a's cooldown ends first
    assert [post(gateway, "pool-1").status_code for _ in range(3)] == [200] * 3  # no refusal, ever
    assert len(upstreams["pool"].received) == 7


def test_relayed_503s_with_a_long_wait_go_back_to_the_client_and_block_nothing(gateway, upstreams):
    upstreams["pool"].reply = first_then_normal(error_reply(503, "overloaded_error", "busy", **{"retry-after": "30"}))
    response = post(gateway, "pool-1")
    # The upstreams' own wait goes to the client, as a single upstream's would ...
    assert (response.status_code, response.headers.get("retry-after")) == (503, "30")
    assert response.json()["error"]["message"] == (
        "no upstream could serve model 'pool-1' (3 attempts): zai/a 503; zai/b 503; zai/c 503")
    # ... but no key is blocked: the next request is sent at once, to the key whose cooldown ends first.
    assert post(gateway, "pool-1").status_code == 200
    assert seen(upstreams["pool"]) == ["a", "b", "c", "a"]


def slow_then(second: Reply):
    """A first answer that takes a second, then `second`, then normal ones."""
    count = iter(range(1_000_000))

    def reply(request: Received):
        number = next(count)
        if number == 0:
            time.sleep(1.0)
        return second if number == 1 else anthropic_like(request)

    return reply


def test_a_success_in_flight_clears_a_cooldown_set_after_it_began_on_both_paths(gateway, upstreams):
    for model, server, provider, label, others in (("solo-1", "backup", "backup", "solo", 0),
                                                   ("pool-1", "pool", "zai", "a", 2)):
        script(upstreams[server], **{label: slow_then(BUSY)})
        slow = threading.Thread(target=lambda m=model: post(gateway, m))
        slow.start()
        time.sleep(0.3)
        for _ in range(others + 1):  # the others take their turn; then the slow one's key answers 503
            post(gateway, model)
        [cooldown] = credential(gateway, provider, label)["cooldowns"]
        assert (cooldown["status"], cooldown["firm"]) == (503, False)
        slow.join()
        assert credential(gateway, provider, label)["cooldowns"] == [], model


def test_a_breaker_opens_on_a_rate_of_errors_then_the_fallback_is_tried_first(gateway, upstreams):
    failing = error_reply(500, "api_error", "Internal server error")
    script(upstreams["pool"], a=failing, b=failing, c=failing)
    for _ in range(4):  # three 500s a request, then the fallback answers
        assert post(gateway, "glm-1").status_code == 200
    breaker = gateway.credentials()["providers"]["zai"]["breaker"]
    assert (breaker["state"], breaker["reason"]) == ("open", "10 of the last 10 answers were upstream errors")
    assert len(upstreams["pool"].received) == 10  # the request that opened it tried no other key
    upstreams["pool"].received.clear()
    upstreams["backup"].received.clear()
    assert post(gateway, "glm-1").status_code == 200
    assert upstreams["pool"].received == [] and seen(upstreams["backup"]) == ["solo"]
    # With no fallback, an open breaker still sends: it orders, it never refuses.
    assert post(gateway, "pool-1").status_code == 500
    assert len(upstreams["pool"].received) == 1


def test_a_breaker_on_the_mitmproxy_path_is_fed_and_never_refuses(gateway, upstreams):
    script(upstreams["backup"], solo=error_reply(502, "api_error", "bad gateway"))
    assert [post(gateway, "solo-1").status_code for _ in range(11)] == [502] * 11
    assert gateway.credentials()["providers"]["backup"]["breaker"]["state"] == "open"
    assert len(upstreams["backup"].received) == 11


def usage_limit(seconds: int) -> Reply:
    """Codex's usage-limit answer: its wait is in the body, in no header."""
    body = {"error": {"type": "usage_limit_reached", "message": "The usage limit has been reached",
                      "resets_in_seconds": seconds}}
    return Reply(429, json.dumps(body).encode(), {"content-type": "application/json"})


def test_the_upstreams_own_429_gets_the_wait_its_body_names(gateway, upstreams):
    script(upstreams["pool"], a=usage_limit(50), b=usage_limit(40), c=usage_limit(45))
    response = post(gateway, "pool-1")
    assert (response.status_code, response.headers["retry-after"]) == (429, "40")
    assert sorted(seen(upstreams["pool"])) == ["a", "b", "c"]
    # one attempt and nothing else left (mitmproxy sends it): the upstream's own words, and its wait
    script(upstreams["backup"], solo=usage_limit(70))
    single = post(gateway, "solo-1")
    assert (single.status_code, single.headers["retry-after"], single.headers["retry-after-ms"]) == (429, "70", "70000")
    assert single.json() == {"type": "error", "error": {"type": "rate_limit_error", "message": (
        "provider 'backup' answered HTTP 429 Too Many Requests: The usage limit has been reached")}}
    assert [post(gateway, m).status_code for m in ("pool-1", "solo-1")] == [429, 429]  # blocked: not sent
    assert len(upstreams["pool"].received) == 3 and seen(upstreams["backup"]) == ["solo"]


@pytest.mark.parametrize("model", ["pool-1", "solo-1"], ids=["relay", "mitmproxy-sent"])
def test_a_429_without_a_stated_wait_is_sent_again_not_refused(gateway, upstreams, model):
    """A 429 that names no wait may be a concurrency limit as much as a quota: the
    backoff orders the key last, and blocks nothing."""
    limited = error_reply(429, "rate_limit_error", "slow down")
    script(upstreams["pool"], a=limited, b=limited, c=limited)
    script(upstreams["backup"], solo=limited)
    server = upstreams["pool" if model == "pool-1" else "backup"]
    for _ in range(2):
        response = post(gateway, model)
        assert response.status_code == 429 and "retry-after" not in response.headers
    assert len(server.received) == (6 if model == "pool-1" else 2)

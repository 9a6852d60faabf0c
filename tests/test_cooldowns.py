"""The cooldown table: how each outcome is classed, the waits upstreams name, and
which cooldowns block a credential in its pool and which only order it."""

from email.utils import formatdate

import pytest
from pooling import fail, labels, pools_of, provider

from modelmux.credentials import snapshot
from modelmux.credentials.cooldowns import (
    POLICIES,
    classify,
    delay,
    iso,
    next_cooldown,
    span,
    subscription_exhausted,
    upstream_delay,
)
from modelmux.credentials.pools import AllBusy, AllCooling, Lease, Unhealthy

T0 = 1_750_000_000.0  # 2025-06-15T15:06:40Z


@pytest.mark.parametrize(
    "outcome, body, kind",
    [
        (200, None, "success"),
        (204, None, "success"),
        (429, None, "rate_limit"),
        (401, None, "auth"),
        (402, None, "auth"),
        (403, None, "forbidden"),
        (408, None, "transient"),
        (500, None, "transient"),
        (502, '{"error": {"type": "bad_gateway"}}', "transient"),
        (529, '{"type":"error","error":{"type":"overloaded_error"}}', "transient"),
        # A relay wrapping a validation error in a 500 (CLIProxyAPI #6029).
        (500, '{"error": {"type" : "invalid_request_error", "message": "messages.0: bad"}}', "request"),
        (400, None, "request"),
        (404, None, "request"),
        (409, None, "request"),
        (413, None, "request"),
        (422, None, "request"),
        ("timeout", None, "unreachable"),
        ("connect", None, "unreachable"),
        ("reset", None, "transient"),
        ("cancelled", None, "cancelled"),
    ],
)
def test_classify(outcome, body, kind):
    assert classify(outcome, body) == kind


def test_the_table():
    rows = {
        kind: (p.base, p.cap, p.upstream_hint, p.per_model, p.try_another, p.needs_attention, p.state, p.firm)
        for kind, p in POLICIES.items()
    }
    assert rows == {
        "success": (0, 0, False, False, False, False, "healthy", "never"),
        "rate_limit": (5, 1800, True, True, True, False, "cooling", "when stated"),
        "auth": (21600, 21600, False, False, True, True, "needs attention", "always"),
        "forbidden": (21600, 21600, False, True, True, True, "needs attention", "always"),
        "transient": (10, 120, True, True, True, False, "unhealthy", "never"),
        "unreachable": (10, 120, False, False, False, False, "unhealthy", "never"),
        "request": (0, 0, False, False, False, False, "healthy", "never"),
        "cancelled": (0, 0, False, False, False, False, "healthy", "never"),
    }


@pytest.mark.parametrize("kind, outcome, hint, firm", [
    ("rate_limit", 429, 30.0, True), ("rate_limit", 429, None, False), ("auth", 401, None, True),
    ("forbidden", 403, None, True), ("transient", 503, 1.0, False), ("transient", 500, None, False),
    ("unreachable", "timeout", None, False),
])
def test_only_quota_and_auth_cooldowns_block(kind, outcome, hint, firm):
    assert next_cooldown(None, kind, outcome, hint, T0, None, T0).firm is firm


def test_a_block_is_never_replaced_by_a_soft_cooldown_and_replaces_one():
    block = next_cooldown(None, "rate_limit", 429, 30.0, T0, None, T0)
    assert next_cooldown(block, "transient", 503, 60.0, T0 + 1, None, T0) is block
    assert next_cooldown(block, "rate_limit", 429, None, T0 + 1, None, T0 + 1) is block  # a guess beside a stated wait
    soft = next_cooldown(None, "transient", 503, 60.0, T0, None, T0)
    replaced = next_cooldown(soft, "rate_limit", 429, 5.0, T0 + 1, None, T0)
    assert (replaced.kind, replaced.until, replaced.firm) == ("rate_limit", T0 + 6, True)


def test_a_failure_sent_during_a_soft_cooldown_climbs_its_ladder():
    first = next_cooldown(None, "transient", 500, None, T0, None, T0 - 1)
    assert next_cooldown(first, "transient", 500, None, T0 + 1, None, T0 - 0.5) is first  # in flight before it
    again = next_cooldown(first, "transient", 500, None, T0 + 2, None, T0 + 1.5)  # sent anyway, failed again
    assert (again.level, again.until) == (1, T0 + 22)


def rfc3339(when: float) -> str:
    return iso(when)


@pytest.mark.parametrize(
    "headers, body, seconds",
    [
        ({"Retry-After": "30"}, None, 30),
        ({"retry-after": "1.5"}, None, 1.5),
        ({"retry-after": formatdate(T0 + 120, usegmt=True)}, None, 120),
        ({"retry-after-ms": "2500", "retry-after": "3"}, None, 2.5),  # the precise one wins
        # OpenAI: the exhausted limit's reset, not the other one's.
        ({"x-ratelimit-reset-requests": "6m0s", "x-ratelimit-remaining-requests": "0",
          "x-ratelimit-reset-tokens": "1s", "x-ratelimit-remaining-tokens": "7000"}, None, 360),
        ({"x-ratelimit-reset-requests": "1h2m3.5s", "x-ratelimit-remaining-requests": "0"}, None, 3723.5),
        # Both exhausted: usable again only when both have reset.
        ({"x-ratelimit-reset-requests": "1s", "x-ratelimit-remaining-requests": "0",
          "x-ratelimit-reset-tokens": "6m0s", "x-ratelimit-remaining-tokens": "0"}, None, 360),
        # No remaining counts: the earliest reset (a too-early retry only learns more).
        ({"x-ratelimit-reset-requests": "1m30s", "x-ratelimit-reset-tokens": "20ms"}, None, 0.02),
        # OpenRouter: epoch milliseconds.
        ({"X-RateLimit-Reset": str(int((T0 + 12) * 1000)), "X-RateLimit-Remaining": "0"}, None, 12),
        # Anthropic API keys: RFC 3339 times per limit.
        ({"anthropic-ratelimit-requests-reset": rfc3339(T0 + 42), "anthropic-ratelimit-requests-remaining": "0",
          "anthropic-ratelimit-tokens-reset": rfc3339(T0 + 5), "anthropic-ratelimit-tokens-remaining": "900"},
         None, 42),
        # Anthropic subscriptions: the account-wide verdict beats the windows.
        ({"anthropic-ratelimit-unified-status": "rejected", "anthropic-ratelimit-unified-reset": str(int(T0) + 18000),
          "anthropic-ratelimit-unified-5h-status": "rejected", "anthropic-ratelimit-unified-5h-reset": str(int(T0) + 18000),
          "anthropic-ratelimit-unified-7d-status": "allowed", "anthropic-ratelimit-unified-7d-reset": str(int(T0) + 259200)},
         None, 18000),
        ({"anthropic-ratelimit-unified-5h-status": "allowed_warning", "anthropic-ratelimit-unified-5h-reset": str(int(T0) + 60),
          "anthropic-ratelimit-unified-7d-status": "rejected", "anthropic-ratelimit-unified-7d-reset": str(int(T0) + 7200)},
         None, 7200),
        # Google: RetryInfo in the error body.
        ({}, ('{"error": {"code": 429, "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", '
              '"retryDelay": "34s"}]}}'), 34),
        ({}, '{"error":{"details":[{"retryDelay":"0.5s"}]}}', 0.5),
        ({}, '{"error": {"type": "usage_limit_reached", "resets_in_seconds": 90}}', 90),
        ({}, f'{{"error": {{"type": "usage_limit_reached", "resets_at": {int(T0) + 45}}}}}', 45),
        ({"retry-after": "7"}, '{"retryDelay": "34s"}', 7),  # a header beats the body
        ({"retry-after": "7", "x-ratelimit-reset": "1m", "x-ratelimit-remaining": "0"}, None, 7),
    ],
)
def test_upstream_delay(headers, body, seconds):
    assert upstream_delay(headers, body, T0) == seconds


@pytest.mark.parametrize(
    "headers, body",
    [
        ({}, None),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "0"}, None),
        ({"retry-after": formatdate(T0 - 60, usegmt=True)}, None),  # in the past: clock skew
        ({"x-ratelimit-reset-tokens": "1s", "x-ratelimit-remaining-tokens": "5"}, None),  # not the exhausted limit
        ({}, '{"error": {"message": "retryDelay unknown"}}'),
    ],
)
def test_no_usable_delay(headers, body):
    assert upstream_delay(headers, body, T0) is None


def test_delay_forms():
    assert delay("2025-06-15T15:07:40Z", T0) == 60
    assert delay("2025-06-15T15:07:40", T0) == 60  # no zone: UTC
    assert delay("2025-06-15T17:07:40+02:00", T0) == 60
    assert delay("Sun, 15 Jun 2025 15:07:40 GMT", T0) == 60
    assert delay(str(int(T0) + 60), T0) == 60
    assert delay(str(int(T0 * 1000) + 60_000), T0) == 60
    assert delay("60", T0) == 60
    assert delay("1m", T0) == 60
    assert delay("250ms", T0) == 0.25
    assert delay("nan", T0) is None
    assert delay("tomorrow", T0) is None


def test_subscription_exhausted():
    assert subscription_exhausted({"Anthropic-Ratelimit-Unified-Status": "rejected"})
    assert subscription_exhausted({"anthropic-ratelimit-unified-7d-status": "rejected"})
    assert not subscription_exhausted({"anthropic-ratelimit-unified-status": "allowed_warning"})
    assert not subscription_exhausted({"anthropic-ratelimit-requests-remaining": "0"})


@pytest.mark.parametrize(
    "seconds, text",
    [(0, "0 s"), (0.2, "1 s"), (45, "45 s"), (90, "1 min 30 s"), (3600, "1 h"), (21600, "6 h"), (3723.5, "1 h 2 min 4 s")],
)
def test_span(seconds, text):
    assert span(seconds) == text


# In a pool: what blocks a credential, and what only orders it


def test_requests_in_flight_that_succeed_after_a_block_leave_it_and_clear_a_soft_cooldown():
    """Thirty requests on one key; one answer of the first ten sets a cooldown while
    the other nine are still out, and they all succeed afterwards."""
    for outcome, headers, firm in ((429, {"retry-after": "30"}, True), (503, {"retry-after": "30"}, False),
                                   (429, {}, False), ("reset", {}, False)):
        pools, clock = pools_of(provider("p", "a", "b", "c"))
        leases = [pools.pick("p", "m") for _ in range(30)]
        clock.advance(0.5)
        failed = leases[0]
        verdict = pools.record(failed, outcome, headers=headers)
        assert verdict.cooldown is not None and verdict.cooldown.firm is firm
        for lease in leases[1:]:
            clock.advance(0.01)
            pools.record(lease, 200)
        blocked = [s.label for s in pools.pools["p"].members if s.cooldowns]
        assert blocked == (["a"] if firm else []), (outcome, headers)
        assert labels(pools, "p", 3) == (["b", "c", "b"] if firm else ["a", "b", "c"]), (outcome, headers)


@pytest.mark.parametrize("outcome, headers", [
    (503, {"retry-after": "1"}), (529, {"retry-after-ms": "1500"}), (500, {}), (408, {}), ("reset", {}),
    ("timeout", {}), ("connect", {}), (429, {}),
], ids=["503-retry-after", "529-retry-after-ms", "500", "408", "reset", "timeout", "connect", "429-no-wait"])
def test_no_host_error_or_guessed_backoff_refuses_a_request(outcome, headers):
    """Issue 16: a 503 with Retry-After on each of three keys, then requests keep coming:
    every one gets a credential, the one whose cooldown ends first, and no refusal."""
    pools, clock = pools_of(provider("zai", "a", "b", "c"))
    for label in ("c", "a", "b"):
        clock.advance(0.1)
        verdict = fail(pools, "zai", label, outcome, headers=headers)
        assert verdict.cooldown is not None and not verdict.cooldown.firm
    for _ in range(20):
        lease = pools.pick("zai", "glm-4.6")
        assert isinstance(lease, Lease) and lease.credential.label == "c"
        lease.release()
    pools.record(pools.pick("zai", "glm-4.6"), outcome, headers=headers)  # c again: now a ends first
    assert labels(pools, "zai", 1, model="glm-4.6") == ["a"]
    states = [c["state"] for c in snapshot.snapshot(pools)["providers"]["zai"]["credentials"]]
    assert states == ["healthy", "cooling" if outcome == 429 else "unhealthy", "cooling" if outcome == 429 else "unhealthy"]


@pytest.mark.parametrize("outcome, headers, body, refusal, until", [
    (429, {"retry-after": "30"}, None, AllCooling, T0 + 30),
    (429, {"x-ratelimit-reset-requests": "1m", "x-ratelimit-remaining-requests": "0"}, None, AllCooling, T0 + 60),
    (429, {"anthropic-ratelimit-unified-status": "rejected", "anthropic-ratelimit-unified-reset": str(int(T0) + 900)},
     None, AllCooling, T0 + 900),
    (429, {}, '{"error": {"type": "usage_limit_reached", "resets_in_seconds": 120}}', AllCooling, T0 + 120),
    (429, {}, f'{{"error": {{"type": "usage_limit_reached", "resets_at": {int(T0) + 240}}}}}', AllCooling, T0 + 240),
    (401, {}, None, Unhealthy, T0 + 21600),
    (402, {}, None, Unhealthy, T0 + 21600),
    (403, {}, None, Unhealthy, T0 + 21600),
], ids=["retry-after", "openai-reset", "anthropic-unified", "codex-resets-in", "codex-resets-at", "401", "402", "403"])
def test_quota_and_refused_keys_block_firmly(outcome, headers, body, refusal, until):
    """Only quota and auth signals refuse without asking, with the earliest recovery."""
    pools, clock = pools_of(provider("zai", "a"))
    verdict = fail(pools, "zai", "a", outcome, headers=headers, body=body)
    assert verdict.cooldown is not None and verdict.cooldown.firm and verdict.cooldown.until == until
    clock.advance(0.5)
    refused = pools.pick("zai", "glm-4.6")
    assert isinstance(refused, refusal) and refused.earliest == until
    error = refused.error()
    assert (error.status, error.headers) == (refusal.status, {"retry-after": str(int(until - clock() + 1))})


def test_a_host_error_never_lifts_or_shortens_a_quota_block():
    pools, clock = pools_of(provider("zai", "a", "b"))
    first, second = pools.pick("zai", "m"), pools.pick("zai", "m")
    third = pools.pick("zai", "m")  # a again
    pools.record(first, 429, headers={"retry-after": "30"})
    verdict = pools.record(third, 503, headers={"retry-after": "1"})
    assert (verdict.cooldown.kind, verdict.cooldown.until, verdict.cooldown.firm) == ("rate_limit", T0 + 30, True)
    pools.record(second, 503)  # b: soft
    clock.advance(2)
    assert labels(pools, "zai", 2) == ["b", "b"]  # a stays blocked, b is sent though it failed


def test_a_block_replaces_a_soft_cooldown():
    pools, _ = pools_of(provider("zai", "a"))
    first, second = pools.pick("zai", "m"), pools.pick("zai", "m")
    assert not pools.record(first, 503, headers={"retry-after": "60"}).cooldown.firm
    verdict = pools.record(second, 429, headers={"retry-after": "5"})
    assert (verdict.cooldown.kind, verdict.cooldown.until, verdict.cooldown.firm) == ("rate_limit", T0 + 5, True)
    assert isinstance(pools.pick("zai", "m"), AllCooling)


def test_busy_credentials_and_soft_ones_are_sent_before_anyone_is_refused():
    pools, _ = pools_of(provider("zai", "a: max_concurrent: 1", "b", "c", max_wait=0))
    held = pools.pick("zai", "m")
    assert held.credential.label == "a"
    fail(pools, "zai", "b", 503, headers={"retry-after": "9"})
    fail(pools, "zai", "c", 429, headers={"retry-after": "9"})
    lease = pools.pick("zai", "m")
    assert isinstance(lease, Lease) and lease.credential.label == "b"  # a busy, c quota-blocked, b soft
    refused = pools.pick("zai", "m", exclude={"b"})
    assert isinstance(refused, AllBusy) and refused.counts == {"cooling": 1, "busy": 1, "tried": 1}

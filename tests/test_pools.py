"""Credential pools: isolation, strategies, affinity, concurrency, cooldowns, refusals."""

import json
import random

import pytest
from pooling import T0, Clock, fail, labels, ladder, load, pools_of, provider

from modelmux.credentials import snapshot as pool_snapshot
from modelmux.credentials.pools import AllBusy, AllCooling, Lease, Pools, Unhealthy, Usage, session_of

# Isolation


def test_isolation_under_mixed_load_and_faults():
    # Both providers have a credential labelled "main": state and keys must still never mix.
    pools, clock = pools_of(
        provider("zai", "main", "b: priority: 2", "c: max_concurrent: 1", strategy="fill-first", affinity=True),
        provider("kimi", "main", "y: weight: 3", cooldown_scope="model"),
    )
    own = {name: {c.key for c in pools.pools[name].provider.credentials} for name in ("zai", "kimi")}
    rng = random.Random(7)
    outcomes = [200, 200, 200, 429, 401, 403, 500, 503, 400, "timeout", "connect", "reset", "cancelled"]
    open_leases: list[Lease] = []
    seen = {"zai": 0, "kimi": 0}
    for i in range(5000):
        if i % 40 == 0:  # refused keys would otherwise leave nothing to pick
            for name, pool in pools.pools.items():
                for credential in pool.provider.credentials:
                    pools.reset(name, credential.label)
        name = rng.choice(["zai", "kimi"])
        picked = pools.pick(name, rng.choice(["m1", "m2"]), rng.choice([None, "s1", "s2"]), rng.choice([(), ("main",)]))
        if isinstance(picked, Lease):
            assert picked.provider == name and picked.credential.key in own[name]
            assert picked.member in pools.pools[name].members
            seen[name] += 1
            open_leases.append(picked)
        else:
            assert picked.provider == name
            assert [b.label for b in picked.blocked] == [c.label for c in pools.pools[name].provider.credentials]
        if open_leases and rng.random() < 0.6:
            lease = open_leases.pop(rng.randrange(len(open_leases)))
            pools.record(lease, rng.choice(outcomes), headers={"retry-after": str(rng.randint(1, 60))})
        clock.advance(rng.random() * 3)
    assert seen["zai"] > 500 and seen["kimi"] > 500
    assert json.dumps(pool_snapshot.snapshot(pools)).count("key-") == 0


def test_same_label_in_two_providers_is_two_credentials():
    pools, _ = pools_of(provider("zai", "main"), provider("kimi", "main"))
    assert fail(pools, "zai", "main", 401).needs_attention
    assert isinstance(pools.pick("zai", "m"), Unhealthy)
    lease = pools.pick("kimi", "m")
    assert isinstance(lease, Lease) and lease.credential.key == "key-kimi-main-secret"


def test_only_pooled_providers_can_be_picked():
    pools = Pools(load("providers:\n  anthropic: {protocol: anthropic, base_url: 'https://a', auth: passthrough}\n"
                       + provider("zai", "a")))
    with pytest.raises(LookupError, match=r"provider 'anthropic' has no credential pool \(pools: zai\)"):
        pools.pick("anthropic", "m")


# Strategies


def test_round_robin_spreads_in_order_and_skips_cooling():
    pools, clock = pools_of(provider("p", "a", "b", "c"))
    assert labels(pools, "p", 7) == ["a", "b", "c", "a", "b", "c", "a"]
    fail(pools, "p", "b", 429)
    assert labels(pools, "p", 4) == ["c", "a", "c", "a"]
    clock.advance(5)
    assert labels(pools, "p", 3) == ["b", "c", "a"]


def test_weights_three_to_one_in_smooth_order():
    pools, _ = pools_of(provider("p", "a: weight: 3", "b"))
    assert labels(pools, "p", 8) == ["a", "a", "b", "a", "a", "a", "b", "a"]


def test_fill_first_uses_the_first_until_it_cools():
    pools, clock = pools_of(provider("p", "a", "b", "c", strategy="fill-first"))
    assert labels(pools, "p", 3) == ["a", "a", "a"]
    fail(pools, "p", "a", 429, headers={"retry-after": "60"})
    assert labels(pools, "p", 2) == ["b", "b"]
    clock.advance(60)
    assert labels(pools, "p", 1) == ["a"]


def test_priority_tiers():
    pools, clock = pools_of(provider("p", "paid: priority: 2", "sub1", "sub2: max_concurrent: 1"))
    assert labels(pools, "p", 4) == ["sub1", "sub2", "sub1", "sub2"]
    fail(pools, "p", "sub1", 429, headers={"retry-after": "10"})
    held = pools.pick("p", "m")
    assert isinstance(held, Lease) and held.credential.label == "sub2"
    assert labels(pools, "p", 2) == ["paid", "paid"]  # sub1 cooling, sub2 busy
    held.release()
    assert labels(pools, "p", 1) == ["sub2"]
    clock.advance(10)
    assert labels(pools, "p", 2) == ["sub1", "sub2"]


# Affinity


def test_affinity_sticks_then_reassigns():
    pools, clock = pools_of(provider("p", "a", "b", "c", affinity=True))
    assert [labels(pools, "p", 1, session=s)[0] for s in ["s1", "s2", "s1", "s1", "s2", None, None]] == [
        "a", "b", "a", "a", "b", "c", "a",
    ]
    fail(pools, "p", "a", 503)
    assert labels(pools, "p", 1, session="s1") == ["b"]  # a unhealthy: re-assigned
    clock.advance(10)
    assert labels(pools, "p", 2, session="s1") == ["b", "b"]  # and stays on the new one
    assert labels(pools, "p", 1, session="s1", model="other") == ["c"]  # per model


def test_affinity_leaves_a_busy_credential_and_ignores_sessions_when_off():
    pools, _ = pools_of(provider("p", "a: max_concurrent: 1", "b", affinity=True))
    assert labels(pools, "p", 1, session="s1") == ["a"]
    held = pools.pick("p", "m", "other")
    assert isinstance(held, Lease) and held.credential.label == "b"
    busy = pools.pick("p", "m")
    assert isinstance(busy, Lease) and busy.credential.label == "a"
    assert labels(pools, "p", 1, session="s1") == ["b"]
    plain, _ = pools_of(provider("p", "a", "b"))
    assert labels(plain, "p", 3, session="s1") == ["a", "b", "a"]


def test_affinity_forgets_the_least_recently_used_session(monkeypatch):
    monkeypatch.setattr("modelmux.credentials.pools.MAX_SESSIONS", 2)
    pools, _ = pools_of(provider("p", "a", "b", "c", affinity=True))
    for session in ["s1", "s2", "s1", "s3"]:
        labels(pools, "p", 1, session=session)
    assert list(pools.pools["p"].sessions) == [("s1", "m"), ("s3", "m")]


@pytest.mark.parametrize(
    "headers, body, session",
    [
        ({"X-Claude-Code-Session-Id": "abc-1"}, {"metadata": {"user_id": "user_x_account__session_zzz"}}, "abc-1"),
        ({}, {"metadata": {"user_id": "user_5dd0_account__session_d2e70091-3007-41a3-a916-cb8b0d3098de"}},
         "d2e70091-3007-41a3-a916-cb8b0d3098de"),
        ({}, {"metadata": {"user_id": json.dumps({"device_id": "d", "account_uuid": "", "session_id": "s-9"})}}, "s-9"),
        ({}, {"metadata": {"user_id": "plain-user"}}, "plain-user"),
        ({}, {"metadata": {}}, None),
        ({}, {}, None),
    ],
)
def test_session_of(headers, body, session):
    assert session_of(headers, body) == session


# Concurrency


def test_max_concurrent_skips_busy_and_refuses_when_all_are():
    released: list[str] = []
    pools = Pools(load("providers:\n" + provider("p", "a: max_concurrent: 1", "b: max_concurrent: 2", max_wait=5)),
                  Clock(), lambda lease: released.append(lease.provider))
    leases = [pools.pick("p", "m") for _ in range(3)]
    assert [lease.credential.label for lease in leases] == ["a", "b", "b"]
    refused = pools.pick("p", "m")
    assert isinstance(refused, AllBusy)
    assert (refused.status, refused.error_type, refused.max_wait, refused.retry_after) == (429, "rate_limit_error", 5, None)
    assert refused.message == (
        "every credential of provider 'p' that could serve model 'm' is busy (a: 1 of 1 requests in flight, "
        "b: 2 of 2 requests in flight) and none was free within 5 s; retry shortly, or raise max_concurrent "
        "if the vendor allows more requests at once"
    )
    with leases[1]:
        pass
    leases[1].release()  # idempotent
    assert released == ["p"]
    assert pool_snapshot.snapshot(pools)["providers"]["p"]["credentials"][1]["in_flight"] == 1
    again = pools.pick("p", "m")
    assert isinstance(again, Lease) and again.credential.label == "b"


# Outcomes and cooldowns


def test_each_outcome_class(caplog):
    pools, _ = pools_of(provider("p", "a", "b", "c", "d", "e", "f"))
    verdict = fail(pools, "p", "a", 429, headers={"Retry-After": "30"})
    assert (verdict.kind, verdict.try_another, verdict.cooldown.until) == ("rate_limit", True, T0 + 30)
    verdict = fail(pools, "p", "b", 401)
    assert (verdict.kind, verdict.try_another, verdict.needs_attention) == ("auth", True, True)
    assert verdict.cooldown.until == T0 + 6 * 3600
    assert caplog.messages == [
        ("credential b…cret of provider p: 401: the key was refused (revoked, mistyped or out of credit?); not used "
         "until 2025-06-15T21:06:40Z (in 6 h). Check the key: a new key under the same label clears this on reload")
    ]
    verdict = fail(pools, "p", "c", 503, headers={"retry-after": "3"})
    assert (verdict.kind, verdict.try_another, verdict.cooldown.until) == ("transient", True, T0 + 3)
    assert verdict.cooldown.reason == "503: upstream error; the upstream said retry in 3 s"
    verdict = fail(pools, "p", "d", "connect")
    assert (verdict.kind, verdict.try_another, verdict.cooldown.until) == ("unreachable", False, T0 + 10)
    assert verdict.cooldown.reason == "connection failed: upstream unreachable; backing off 10 s"
    verdict = fail(pools, "p", "e", 400)
    assert (verdict.kind, verdict.try_another, verdict.needs_attention, verdict.cooldown) == ("request", False, False, None)
    verdict = fail(pools, "p", "f", "cancelled")
    assert (verdict.kind, verdict.try_another, verdict.cooldown) == ("cancelled", False, None)
    assert labels(pools, "p", 2) == ["e", "f"]  # a bad request or a client leaving cools nothing
    states = {c["label"]: (c["state"], c["requests"], c["errors"]) for c in pool_snapshot.snapshot(pools)["providers"]["p"]["credentials"]}
    assert states == {
        "a": ("cooling", 1, 1), "b": ("needs attention", 1, 1), "c": ("unhealthy", 1, 1),
        "d": ("unhealthy", 1, 1), "e": ("healthy", 2, 1), "f": ("healthy", 1, 0),
    }


def test_rate_limit_backoff_doubles_to_its_cap_and_a_success_resets_it():
    pools, clock = pools_of(provider("p", "a"))
    assert ladder(pools, clock, 429, 11) == [5, 10, 20, 40, 80, 160, 320, 640, 1280, 1800, 1800]
    assert labels(pools, "p", 1) == ["a"]
    assert ladder(pools, clock, 429, 2) == [5, 10]


def test_transient_backoff_and_an_upstream_wait_is_kept_exactly():
    pools, clock = pools_of(provider("p", "a"))
    assert ladder(pools, clock, 502, 6) == [10, 20, 40, 80, 120, 120]
    verdict = fail(pools, "p", "a", 429, headers={"retry-after-ms": "1234"})
    assert verdict.cooldown.until == clock() + 1.234  # never rounded up


def test_failures_of_one_window_do_not_climb_the_ladder():
    pools, clock = pools_of(provider("p", "a"))
    first, second = pools.pick("p", "m"), pools.pick("p", "m")
    assert pools.record(first, 429).cooldown.until == T0 + 5
    clock.advance(1)
    assert pools.record(second, 429).cooldown.until == T0 + 5
    clock.advance(4)
    assert ladder(pools, clock, 429, 1) == [10]


def test_a_success_only_lifts_a_block_set_before_its_request():
    pools, clock = pools_of(provider("p", "a"))
    slow, fast = pools.pick("p", "m"), pools.pick("p", "m")
    clock.advance(1)
    pools.record(fast, 429, headers={"retry-after": "5"})
    pools.record(slow, 200)  # sent before the 429: says nothing about the quota now
    assert isinstance(pools.pick("p", "m"), AllCooling)
    clock.advance(5)
    assert labels(pools, "p", 1) == ["a"]


def test_a_short_failure_does_not_shorten_a_long_block():
    pools, _ = pools_of(provider("p", "a", "b"))
    first = pools.pick("p", "m")
    pools.record(pools.pick("p", "m"), 200)
    later = pools.pick("p", "m")
    assert pools.record(first, 401).cooldown.until == T0 + 21600
    assert pools.record(later, 503, headers={"retry-after": "9"}).cooldown.until == T0 + 21600


def test_a_stated_wait_replaces_a_guessed_one():
    pools, _ = pools_of(provider("p", "a"))
    first, second = pools.pick("p", "m"), pools.pick("p", "m")
    assert pools.record(first, 502).cooldown.until == T0 + 10
    assert pools.record(second, 429, headers={"retry-after": "3"}).cooldown.until == T0 + 3


def test_model_scope():
    pools, clock = pools_of(provider("p", "a", "b", cooldown_scope="model"))
    fail(pools, "p", "a", 429, "opus", headers={"retry-after": "60"})
    assert labels(pools, "p", 2, model="opus") == ["b", "b"]
    clock.advance(1)  # a success on another model, sent after the 429, leaves opus cooling
    assert sorted(labels(pools, "p", 2, model="haiku")) == ["a", "b"]
    fail(pools, "p", "b", 401, "haiku")  # a refused key is refused for every model
    assert labels(pools, "p", 1, model="sonnet") == ["a"]
    unified = {"anthropic-ratelimit-unified-status": "rejected", "anthropic-ratelimit-unified-reset": str(int(T0) + 300)}
    fail(pools, "p", "a", 429, "haiku", headers=unified)  # the subscription is out, for every model
    refused = pools.pick("p", "sonnet")
    assert isinstance(refused, Unhealthy) and refused.earliest == T0 + 300
    snapshot = pool_snapshot.snapshot(pools)["providers"]["p"]["credentials"][0]["cooldowns"]
    assert [(c["model"], c["until"]) for c in snapshot] == [(None, "2025-06-15T15:11:40Z"), ("opus", "2025-06-15T15:07:40Z")]


def test_a_retry_elsewhere_excludes_what_was_tried():
    pools, _ = pools_of(provider("p", "a", "b"))
    lease = pools.pick("p", "m")
    assert pools.record(lease, "reset").try_another
    lease = pools.pick("p", "m", exclude={"a"})
    assert lease.credential.label == "b"
    pools.record(lease, 200)
    refused = pools.pick("p", "m", exclude={"a", "b"})
    assert isinstance(refused, Unhealthy) and refused.counts == {"tried": 2}
    assert refused.retry_after is None  # a soft cooldown names no time to come back


def test_recording_twice_is_a_bug():
    pools, _ = pools_of(provider("p", "a"))
    lease = pools.pick("p", "m")
    pools.record(lease, 200, usage=Usage(10, 2))
    with pytest.raises(RuntimeError, match=r"Lease\(p/a, m\) was already recorded"):
        pools.record(lease, 200, usage=Usage(10, 2))
    assert pool_snapshot.snapshot(pools)["providers"]["p"]["credentials"][0]["input_tokens"] == 10


# Refusals


def test_all_cooling_names_the_earliest_recovery():
    pools, clock = pools_of(provider("zai", "a", "b"))
    fail(pools, "zai", "a", 429, headers={"retry-after": "90"})
    fail(pools, "zai", "b", 429, body='{"error": {"details": [{"retryDelay": "30.5s"}]}}')
    clock.advance(0.25)
    refused = pools.pick("zai", "glm-4.6")
    assert isinstance(refused, AllCooling)
    assert (refused.status, refused.error_type, refused.earliest, refused.retry_after) == (
        429, "rate_limit_error", T0 + 30.5, 31,
    )
    assert refused.message == (
        "every credential of provider 'zai' is rate limited for model 'glm-4.6' (a until 2025-06-15T15:08:10Z, "
        "b until 2025-06-15T15:07:10Z); the first recovers at 2025-06-15T15:07:10Z (in 31 s)"
    )


def test_unhealthy_counts_and_last_statuses():
    pools, _ = pools_of(provider("zai", "a", "b", "c"))
    fail(pools, "zai", "a", 401)
    fail(pools, "zai", "b", 503)
    fail(pools, "zai", "c", 429, headers={"retry-after": "4"})
    refused = pools.pick("zai", "glm-4.6", exclude={"b"})  # else b would be sent
    assert isinstance(refused, Unhealthy)
    assert (refused.status, refused.error_type, refused.retry_after) == (503, "overloaded_error", 4)
    assert refused.counts == {"cooling": 1, "needs attention": 1, "tried": 1}
    assert refused.last_statuses == {"a": 401, "b": 503, "c": 429}
    assert refused.message == (
        "no credential of provider 'zai' can serve model 'glm-4.6' now: 1 cooling, 1 needs attention, 1 tried "
        "(last upstream statuses: a 401, b 503, c 429); the first recovers at 2025-06-15T15:06:44Z (in 4 s)"
    )


def test_a_soft_cooldown_is_sent_anyway_when_nothing_else_is_left():
    pools, clock = pools_of(provider("zai", "a", "b", "c"))
    fail(pools, "zai", "a", 401)
    fail(pools, "zai", "b", 500)
    clock.advance(1)
    fail(pools, "zai", "c", "connect")
    lease = pools.pick("zai", "glm-4.6")
    assert isinstance(lease, Lease) and lease.credential.label == "b"  # its cooldown ends first
    lease.release()
    assert isinstance(pools.pick("zai", "glm-4.6", exclude={"b"}), Lease)  # then c

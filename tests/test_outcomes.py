"""What failed attempts add up to: a second round after host errors, when a credential
recovers, and the client's error. Pure: pools with a fake clock, no network."""

from pooling import T0, load, provider

from modelmux import routing
from modelmux.credentials.pools import Lease, Pools
from modelmux.attempt.outcomes import ROUND_PAUSE, Failure, Outcomes, summary

CONFIG = load("providers:\n" + provider("zai", "a", "b") + provider("backup", "solo")
              + "  mine: {protocol: anthropic, base_url: 'https://mine', auth: passthrough}\n"
              + "routes:\n  - {match: 'glm-*', provider: zai, fallback: [backup, mine]}\n")
CANDIDATES = routing.candidates(CONFIG, routing.route(CONFIG, "glm-1"))
ZAI, BACKUP, MINE = CANDIDATES


def attempt(pools: Pools, candidate: routing.Decision, outcome, headers: dict[str, str] | None = None) -> Failure:
    """A failed attempt as the failover records it (its credential's verdict included)."""
    headers = headers or {}
    verdict = None
    label = "client token"
    if candidate.provider.credentials:
        lease = pools.pick(candidate.provider.name, candidate.upstream_model)
        assert isinstance(lease, Lease), lease
        verdict = pools.record(lease, outcome, headers=headers)
        label = lease.credential.label
    kind = verdict.kind if verdict else ("transient" if outcome in (500, 503, "reset") else "rate_limit")
    return Failure(candidate, label, outcome, kind, "failed", 503, b"{}", headers, verdict)


def test_host_errors_earn_a_second_round_over_the_providers_that_had_them():
    pools = Pools(CONFIG, lambda: T0)
    outcomes = Outcomes([attempt(pools, ZAI, 503), attempt(pools, ZAI, 429, {"retry-after": "30"}),
                         attempt(pools, BACKUP, 429, {"retry-after": "30"}), attempt(pools, MINE, "reset")])
    assert outcomes.again(CANDIDATES, 6, pools.admits, T0) == ([ZAI, MINE], ROUND_PAUSE)
    assert outcomes.again(CANDIDATES, 4, pools.admits, T0) is None  # no attempt left


def test_the_round_waits_for_the_upstreams_word_when_it_is_short():
    pools = Pools(CONFIG, lambda: T0)
    short = Outcomes([attempt(pools, BACKUP, 503, {"retry-after": "1"}), attempt(pools, MINE, 503, {"retry-after-ms": "1500"})])
    assert short.again(CANDIDATES, 4, pools.admits, T0 + 0.25) == ([BACKUP, MINE], 1.5)
    long = Outcomes([attempt(pools, ZAI, 529, {"retry-after": "5"})])
    assert long.again(CANDIDATES, 4, pools.admits, T0) is None  # the client gets the 529 and its wait


def test_no_second_round_for_rate_limits_unreachable_hosts_a_faulty_request_or_an_open_breaker():
    pools = Pools(CONFIG, lambda: T0)
    for failures in ([attempt(pools, ZAI, 429)], [attempt(pools, BACKUP, "timeout")], [attempt(pools, BACKUP, "connect")],
                     [attempt(pools, ZAI, 503), attempt(pools, BACKUP, 400)]):
        assert Outcomes(failures).again(CANDIDATES, 4, pools.admits, T0) is None, failures
    outcomes = Outcomes([attempt(pools, ZAI, 500)])
    assert outcomes.again(CANDIDATES, 4, lambda name: name != "zai", T0) is None


def test_a_retry_after_only_from_blocks():
    pools = Pools(CONFIG, lambda: T0)
    blocked = Outcomes([attempt(pools, ZAI, 429, {"retry-after": "30"}), attempt(pools, ZAI, 429, {"retry-after": "20"})])
    assert blocked.earliest_recovery() == T0 + 20
    error = summary("glm-1", blocked, T0)
    assert (error.status, error.headers) == (429, {"retry-after": "20"})
    assert error.message == ("every upstream for model 'glm-1' is rate limited: zai/a 429; zai/b 429; "
                             "the first recovers at 2025-06-15T15:07:00Z (in 20 s)")
    # One of them only softly cooled: it is sent again at once, so no wait is named.
    soft = Outcomes([attempt(pools, BACKUP, 429), *blocked.failures])
    assert soft.earliest_recovery() is None
    error = summary("glm-1", soft, T0)
    assert (error.status, error.headers) == (429, {})
    assert error.message == "every upstream for model 'glm-1' is rate limited: backup/solo 429; zai/a 429; zai/b 429"
    # Host errors: 503 with no wait of modelmux's own, but the upstreams' own when each named one.
    named = Outcomes([attempt(pools, BACKUP, 503, {"retry-after": "3"}), attempt(pools, MINE, 529, {"retry-after": "5"})])
    error = summary("glm-1", named, T0)
    assert (error.status, error.error_type, error.headers) == (503, "overloaded_error", {"retry-after": "3"})
    unnamed = Outcomes([*named.failures, attempt(pools, BACKUP, "reset")])  # this one may answer at once
    assert summary("glm-1", unnamed, T0).headers == {}


def test_one_upstream_tried_twice_is_still_a_single_upstream():
    pools = Pools(CONFIG, lambda: T0)
    first, second = attempt(pools, BACKUP, 503), attempt(pools, BACKUP, 503)
    assert Outcomes([first, second]).single_upstream()
    assert not Outcomes([first, attempt(pools, MINE, 503)]).single_upstream()
    assert not Outcomes([first], refusals=[pools.pick("zai", "glm-1", exclude={"a", "b"})]).single_upstream()  # type: ignore[list-item]

"""Several gateways, one pool state: the pure part (modelmux/credentials/fleet.py and the
fleet's turns in pools.py), with a fake clock. The same through three real gateways and
a real Redis: test_fleet_gateways.py."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from pooling import T0, Clock, fail, load, pools_of, provider

from modelmux.credentials import fleet
from modelmux.credentials.cooldowns import Cooldown
from modelmux.credentials.fleet import Event, Keys, Link
from modelmux.credentials.pools import Lease, Pools


def two_gateways(*providers: str) -> tuple[Pools, Pools, Clock]:
    """Two gateways' pools of the same routes.yaml, on one clock."""
    clock = Clock()
    text = "providers:\n" + "".join(providers)
    return Pools(load(text), clock), Pools(load(text), clock), clock


def turns(pools: Pools, name: str, numbers: range, exclude: tuple[str, ...] = ()) -> list[str]:
    picked = []
    for number in numbers:
        lease = pools.pick(name, "m", exclude=exclude, turn=number)
        assert isinstance(lease, Lease), lease
        picked.append(lease.credential.label)
        pools.record(lease, 200)
    return picked


def test_shared_turns_spread_three_gateways_as_one_gateway_spreads():
    """The turn numbers Redis hands out (INCR), taken by whichever gateway asks next:
    the fleet's sequence is one gateway's smooth weighted round-robin."""
    gateways = [pools_of(provider("p", "a: weight: 3", "b", "c"))[0] for _ in range(3)]
    alone, _ = pools_of(provider("p", "a: weight: 3", "b", "c"))
    alone_labels = [alone.pick("p", "m").credential.label for _ in range(10)]  # type: ignore[union-attr]
    fleet_labels = [turns(gateways[n % 3], "p", range(n, n + 1))[0] for n in range(10)]
    assert fleet_labels == alone_labels == ["a", "b", "a", "c", "a", "a", "b", "a", "c", "a"]


def test_a_credential_sitting_out_leaves_its_share_to_the_others_evenly():
    pools, _ = pools_of(provider("p", "a", "b", "c"))
    assert Counter(turns(pools, "p", range(60), exclude=("a",))) == {"b": 30, "c": 30}
    # With a cooling instead of excluded, the same.
    fail(pools, "p", "a", 429, headers={"retry-after": "30"})
    assert Counter(turns(pools, "p", range(60))) == {"b": 30, "c": 30}


def test_fill_first_and_a_single_credential_take_no_turns():
    pools, _ = pools_of(provider("p", "a", "b", strategy="fill-first"), provider("q", "solo"))
    assert not pools.pool("p").takes_turns() and not pools.pool("q").takes_turns()
    assert turns(pools, "p", range(5)) == ["a"] * 5
    three, _ = pools_of(provider("r", "a", "b", "c"))
    assert three.pool("r").takes_turns()


def cooldown(kind="rate_limit", since=T0, until=T0 + 30, stated=True, model=None, status=429) -> Cooldown:
    reason = "429: rate limited; the upstream said retry in 30 s"
    return Cooldown(kind, since, until, 0, reason, status, model, stated)  # type: ignore[arg-type]


def test_another_gateways_cooldown_is_adopted_with_its_real_expiry():
    ours, theirs, clock = two_gateways(provider("p", "a", "b"))
    verdict = fail(theirs, "p", "a", 429, headers={"retry-after": "30"})
    credential = theirs.pool("p").members[0].credential
    clock.advance(10)  # it reaches us 10 s later (say, after an outage): 20 s are left, not 30
    holder, stored = fleet.read_stored(fleet.stored_cooldown(credential, verdict.cooldown))
    assert fleet.adopt(ours, "p", "a", holder, stored, clock())
    assert ours.pool("p").members[0].cooldowns[None].until == T0 + 30
    assert [ours.pick("p", "m").credential.label for _ in range(3)] == ["b", "b", "b"]  # type: ignore[union-attr]
    assert not fleet.adopt(ours, "p", "a", holder, stored, clock())  # the same again changes nothing


def test_a_cooldown_for_another_key_under_the_same_label_is_not_adopted():
    ours, _, clock = two_gateways(provider("p", "a", "b"))
    elsewhere, _ = pools_of(provider("p", "a", "b", secret="rotated"))
    holder = fleet.identity(elsewhere.pool("p").members[0].credential)
    assert holder != fleet.identity(ours.pool("p").members[0].credential)
    assert not fleet.adopt(ours, "p", "a", holder, cooldown(), clock())
    assert not fleet.adopt(ours, "p", "nobody", holder, cooldown(), clock())
    assert not fleet.adopt(ours, "q", "a", holder, cooldown(), clock())


@pytest.mark.parametrize(("ours", "theirs", "kept"), [
    # A block outlasts an ordering, whichever came first.
    (cooldown("transient", stated=False, until=T0 + 60, status=503), cooldown(since=T0 + 1), "theirs"),
    (cooldown(since=T0 + 1), cooldown("transient", since=T0 + 2, until=T0 + 60, stated=False, status=503), "ours"),
    # The newer word on the same thing wins, even when shorter.
    (cooldown(until=T0 + 300), cooldown(since=T0 + 5, until=T0 + 20), "theirs"),
    (cooldown(since=T0 + 5, until=T0 + 20), cooldown(until=T0 + 300), "ours"),
    # An expired one is nothing.
    (cooldown(), cooldown(since=T0 - 100, until=T0 - 1), "ours"),
])  # fmt: skip
def test_which_cooldown_prevails_when_two_gateways_had_one(ours, theirs, kept):
    pools, _, clock = two_gateways(provider("p", "a", "b"))
    member = pools.pool("p").members[0]
    member.cooldowns[None] = ours
    fleet.adopt(pools, "p", "a", fleet.identity(member.credential), theirs, clock())
    assert member.cooldowns[None] is (ours if kept == "ours" else theirs)


def test_a_success_elsewhere_lifts_what_it_proves_over():
    ours, _, clock = two_gateways(provider("p", "a", "b"))
    member = ours.pool("p").members[0]
    member.cooldowns = {None: cooldown(since=T0 + 10), "m": cooldown("transient", stated=False, model="m", status=503)}
    lift = Event("lift", "other", "p", "a", model="m", started=T0 + 5)
    assert fleet.apply(ours, Event.decode(lift.encode()), clock())
    assert list(member.cooldowns) == [None]  # the block set after that request was sent stays
    assert fleet.apply(ours, Event("lift", "other", "p", "a", model="m", started=T0 + 11), clock())
    assert member.cooldowns == {}


def test_a_reset_elsewhere_clears_ours_and_a_release_says_how_many_are_held():
    ours, _, clock = two_gateways(provider("p", "a", "b: max_concurrent: 2"))
    for member in ours.pool("p").members:
        member.cooldowns[None] = cooldown()
    assert fleet.apply(ours, Event("reset", "other", "p", "a"), clock())
    assert [bool(m.cooldowns) for m in ours.pool("p").members] == [False, True]
    fleet.apply(ours, Event("reset", "other", "p", None), clock())
    assert [bool(m.cooldowns) for m in ours.pool("p").members] == [False, False]
    b = ours.pool("p").members[1]
    lease = ours.pick("p", "m", exclude=("a",))
    assert isinstance(lease, Lease) and lease.member is b
    assert not fleet.apply(ours, Event.decode(Event("release", "other", "p", "b", count=2).encode()), clock())
    assert (b.in_flight, b.elsewhere, b.busy()) == (1, 1, True)  # one here, one on another gateway
    assert not isinstance(ours.pick("p", "m", exclude=("a",)), Lease)  # both of b's slots are taken
    fleet.apply(ours, Event("release", "other", "p", "b", count=1), clock())
    assert (b.elsewhere, b.busy()) == (0, False)


def test_events_round_trip_and_anything_else_is_refused():
    event = Event("cooldown", "host:1:abc", "p", "a", "0123456789abcdef", cooldown(model="m"))
    assert Event.decode(event.encode()) == event
    for bad in (b"not json", b"{}", json.dumps({"type": "gossip", "sender": "x", "provider": "p"}).encode()):
        with pytest.raises(ValueError):
            Event.decode(bad)


def test_nothing_the_fleet_stores_or_says_holds_a_key():
    pools, _ = pools_of(provider("p", "a", "b", secret="sk-very-secret-value"))
    credential = pools.pool("p").members[0].credential
    keys = Keys("team")
    names = [keys.cooldown("p", "a", None), keys.cooldown("p", "a", "m"), keys.turn("p"), keys.slots("p", "a"),
             keys.token("p", "a"), keys.refreshing("p", "a"), keys.usage(), keys.events()]
    said = [fleet.stored_cooldown(credential, cooldown()),
            Event("cooldown", "i", "p", "a", fleet.identity(credential), cooldown()).encode()]
    assert all(name.startswith("team:") for name in names)
    assert not any("secret" in text for text in names + said)


def test_the_link_backs_off_while_redis_is_away_and_says_since_when():
    link = Link(T0)
    assert not link.up and link.due(T0)
    assert not link.failed("ConnectionError: refused", T0)  # never up: nothing to announce
    assert link.retry_at == T0 + 0.5 and not link.due(T0 + 0.4) and link.due(T0 + 0.5)
    assert link.resynced(T0 + 1) and link.up
    assert link.describe(T0 + 2) == {"status": "connected", "since": "2025-06-15T15:06:41Z"}
    assert link.failed("TimeoutError", T0 + 10)  # it went down: said once
    assert link.retry_at == T0 + 10.5
    waits = []
    for _ in range(5):
        now = link.retry_at
        assert not link.failed("ConnectionError: refused", now)
        waits.append(link.retry_at - now)
    assert waits == [1.0, 2.0, 4.0, 5.0, 5.0]  # doubling, at most 5 s apart
    document = link.describe(T0 + 70)
    assert (document["status"], document["since"], document["for"]) == ("degraded", "2025-06-15T15:06:50Z", "1 min")
    assert document["reason"] == "ConnectionError: refused"
    assert link.resynced(T0 + 71) and link.up and link.describe(T0 + 72)["since"] == "2025-06-15T15:07:51Z"


def test_a_refusal_counts_the_fleets_requests_in_flight():
    pools, _ = pools_of(provider("p", "a: max_concurrent: 2", max_wait=1))
    member = pools.pool("p").members[0]
    lease = pools.pick("p", "m")
    assert isinstance(lease, Lease)
    member.elsewhere = 1
    refused = pools.pick("p", "m")
    assert not isinstance(refused, Lease)
    assert "(a: 2 of 2 requests in flight, 1 of them on other gateways)" in refused.message

"""A provider's breaker: opened by a rate of host errors over a window, half-opened with
one real probe at a time; and how pools feed it."""

from pooling import Clock, fail, labels, load, pools_of, provider

from modelmux.credentials import snapshot
from modelmux.credentials.breakers import MIN_VOLUME, OPEN_CAP, WINDOW, Breaker
from modelmux.credentials.cooldowns import iso
from modelmux.credentials.pools import Lease


def feed(breaker: Breaker, clock: Clock, outcomes: str, step: float = 0.25) -> None:
    """'x': a host error, '.': a success, each sent and answered at once."""
    for outcome in outcomes:
        clock.advance(step)
        breaker.record(outcome == "x", clock(), clock())


def test_one_error_or_a_few_never_open_it():
    breaker, clock = Breaker(), Clock()
    feed(breaker, clock, "x")
    assert breaker.state(clock()) == "closed"
    feed(breaker, clock, "x" * (MIN_VOLUME - 2))  # every answer an error, but too few to be a rate
    assert (breaker.state(clock()), breaker.admits(clock())) == ("closed", True)


def test_a_rate_of_half_opens_it_and_less_does_not():
    breaker, clock = Breaker(), Clock()
    feed(breaker, clock, "x...." * 10)  # 20 %
    assert breaker.state(clock()) == "closed"
    breaker, clock = Breaker(), Clock()
    feed(breaker, clock, ".x" * 5)  # 5 of 10
    assert (breaker.state(clock()), breaker.admits(clock())) == ("open", False)
    assert breaker.describe(clock()) == {"state": "open", "until": iso(clock() + 10),
                                         "reason": "5 of the last 10 answers were upstream errors"}


def test_only_the_window_counts():
    breaker, clock = Breaker(), Clock()
    feed(breaker, clock, "x" * 6)
    clock.advance(WINDOW)  # those six are gone
    feed(breaker, clock, "...x" + "x" * 4)
    assert breaker.state(clock()) == "closed"  # 5 of 8 now: too few
    feed(breaker, clock, "..")
    assert breaker.state(clock()) == "open"  # 5 of 10


def test_it_half_opens_with_one_probe_at_a_time_and_an_answer_closes_it():
    breaker, clock = Breaker(), Clock()
    feed(breaker, clock, "x" * 10)
    opened = clock()
    clock.advance(10)
    assert (breaker.state(clock()), breaker.admits(clock())) == ("half-open", True)
    assert breaker.probe(clock()) is True
    assert (breaker.admits(clock()), breaker.probe(clock())) == (False, False)  # one probe out
    breaker.done()
    breaker.record(False, opened + 10, clock())
    assert (breaker.state(clock()), breaker.admits(clock())) == ("closed", True)


def test_a_failed_probe_opens_it_for_twice_as_long_up_to_a_cap():
    breaker, clock = Breaker(), Clock()
    feed(breaker, clock, "x" * 10)
    lengths = []
    for _ in range(6):
        clock.advance(breaker.until - clock())
        assert breaker.probe(clock())
        breaker.done()
        breaker.record(True, clock(), clock())
        lengths.append(breaker.until - clock())
    assert lengths == [20, 40, 80, 120, 120, 120]
    assert OPEN_CAP == 120


def test_answers_to_requests_sent_before_it_opened_do_not_close_it():
    breaker, clock = Breaker(), Clock()
    sent = clock()
    feed(breaker, clock, "x" * 10)
    breaker.record(False, sent, clock())  # in flight when it opened
    assert breaker.state(clock()) == "open"
    breaker.record(False, clock(), clock())  # sent to it while open (nothing else was left), answered
    assert breaker.state(clock()) == "closed"


def test_errors_while_open_keep_it_open_without_lengthening_it():
    breaker, clock = Breaker(), Clock()
    feed(breaker, clock, "x" * 10)
    until = breaker.until
    breaker.record(True, clock(), clock())
    assert (breaker.state(clock()), breaker.until) == ("open", until)


# Fed by the pools


def test_pools_feed_it_host_errors_and_successes_only():
    pools, clock = pools_of(provider("zai", "a", "b"))
    for outcome in [429, 401, 400, "cancelled"] * 3:
        lease = pools.pick("zai", "m")
        if isinstance(lease, Lease):
            pools.record(lease, outcome, headers={"retry-after": "0.01"})
        clock.advance(0.02)
        pools.reset("zai", "a")
        pools.reset("zai", "b")
    assert pools.admits("zai") and not pools.pools["zai"].breaker.outcomes
    for outcome in [503, "reset", "timeout", 529, 200] * 2:
        clock.advance(0.25)
        fail(pools, "zai", "a", outcome)
        pools.reset("zai", "a")
    assert not pools.admits("zai")
    assert snapshot.snapshot(pools)["providers"]["zai"]["breaker"] == {
        "state": "open", "until": iso(clock() + 10), "reason": "8 of the last 10 answers were upstream errors"}
    assert pools.admits("no-such-provider")  # no pool, no breaker: always its turn


def test_a_half_open_pool_lends_one_probe_and_its_end_frees_the_next():
    pools, clock = pools_of(provider("zai", "a", "b"))
    for _ in range(10):
        fail(pools, "zai", "a", 500)
        pools.reset("zai", "a")
    clock.advance(10)
    probe = pools.pick("zai", "m")
    other = pools.pick("zai", "m")
    assert (probe.probe, other.probe, pools.admits("zai")) == (True, False, False)
    probe.release()  # answered without a verdict (the client left): the next may probe
    assert pools.admits("zai")
    assert pools.pick("zai", "m").probe
    pools.record(pools.pick("zai", "m"), 200)  # sent while half-open: answered
    assert pools.pools["zai"].breaker.state(clock()) == "closed"


def test_a_breaker_survives_a_reload_and_a_reset_of_the_whole_pool_closes_it():
    pools, _ = pools_of(provider("zai", "a"))
    for _ in range(10):
        fail(pools, "zai", "a", 502)
    breaker = pools.pools["zai"].breaker
    pools.reload(load("providers:\n" + provider("zai", "a", "b")))
    assert pools.pools["zai"].breaker is breaker and not pools.admits("zai")
    pools.pools["zai"].rewind()
    assert pools.admits("zai")
    assert labels(pools, "zai", 2) == ["b", "b"]  # a's cooldown stays: rewind is the turns and the breaker

"""Issue 16 §1 against llmock, a third party's fault-injecting mock: upstream errors
with a Retry-After (as llmock and most APIs send them) never turn into local
refusals, on both send paths; only quota blocks refuse, at once, with the earliest
recovery. Bounded loads (tests/fault_load.py; `python tests/fault_load.py` runs the
full 300-request measurement), with `-s` printing each one's figures."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

pytest.importorskip("llmock.testing", reason="llmock (a test extra) is not installed: pip install -e '.[test]'")
from fault_load import ANSWERED, BROKEN, CLIENT_KEY, REFUSED, UPSTREAM, Measured, apply, measure, running  # noqa: E402
from llmock.chaos import ChaosSettings  # noqa: E402
from gateway import Gateway  # noqa: E402
from llmock.ratelimit import LimitSettings  # noqa: E402
from llmock.testing import LLMockServer  # noqa: E402

REQUESTS, CONCURRENCY = 120, 20  # about a second each at llmock's 50 ms per answer


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LLMockServer, LLMockServer, Gateway]]:
    with running(tmp_path_factory.mktemp("faults")) as started:
        yield started


def load(servers: tuple[LLMockServer, LLMockServer, Gateway], scenario: str) -> Measured:
    measured = measure(scenario, REQUESTS, CONCURRENCY, *servers)
    print(f"\n{measured.line()}")
    assert measured.tally[REFUSED] == 0, measured.line()  # never refused while the upstream answers 95 %
    assert measured.tally[BROKEN] == 0, measured.line()
    return measured


def test_a_single_key_sent_by_mitmproxy_passes_every_503_on_and_is_never_blocked(servers):
    """mitmproxy cannot send a request twice: the client gets the upstream's own 503 with
    its Retry-After, and the next request goes to the key as if nothing happened."""
    measured = load(servers, "503-single")
    flaky = measured.upstream["flaky"]
    assert measured.tally[UPSTREAM] == flaky[503] and measured.tally[ANSWERED] == flaky[200]
    assert flaky[200] + flaky[503] == REQUESTS  # each request was sent exactly once


def test_a_pool_of_three_keys_answers_every_request_through_5_percent_503s(servers):
    measured = load(servers, "503")
    assert measured.tally[ANSWERED] >= REQUESTS - 1, measured.line()  # a request fails only if four 503s in a row
    assert measured.upstream["flaky"][503] > 0  # the faults did happen


def test_a_pool_with_a_fallback_answers_every_request_through_5_percent_503s(servers):
    measured = load(servers, "503-fallback")
    assert measured.tally[ANSWERED] >= REQUESTS - 1, measured.line()


def test_the_fault_mix_with_a_healthier_fallback(servers):
    """Rate limits (rpm and random 429s with Retry-After), 503s and streams dropped before
    their first content on the flaky provider, 2 % 503s on its fallback."""
    measured = load(servers, "mix")
    assert measured.tally[ANSWERED] >= REQUESTS - 1, measured.line()
    assert measured.upstream["flaky"][429] > 0 and measured.upstream["backup"][200] > 0


@pytest.mark.parametrize("model, keys", [("single-1", 1), ("pool-1", 3)], ids=["mitmproxy-sent", "relay"])
def test_every_key_out_of_quota_is_an_immediate_429_with_the_earliest_recovery(servers, model, keys):
    """llmock's requests-per-minute limit, one a minute per key: once each key has
    answered one, every key is blocked for the wait llmock names, and the next request
    is refused without asking it."""
    flaky, backup, gateway = servers
    apply("503", flaky, backup)
    flaky.state.chaos = ChaosSettings()  # no random faults
    flaky.state.limiter.configure(LimitSettings(rpm=1))
    gateway.reset_credentials()
    send = lambda: httpx.post(f"{gateway.url}/v1/messages", headers={"x-api-key": CLIENT_KEY}, timeout=30,  # noqa: E731
                              json={"model": model, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]})
    assert [send().status_code for _ in range(keys)] == [200] * keys
    limited = send()  # each key in turn gets llmock's 429, the last word is the gateway's summary or llmock's own
    assert limited.status_code == 429 and 58 <= int(limited.headers["retry-after"]) <= 60, limited.headers
    sent = len(flaky.state.journal.records())
    assert sent == 2 * keys
    refused = send()
    assert refused.status_code == 429 and 58 <= int(refused.headers["retry-after"]) <= 60
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert refused.json()["error"]["message"].startswith(
        f"every credential of provider '{'flaky' if keys == 3 else 'flaky-single'}' is rate limited for model ")
    assert len(flaky.state.journal.records()) == sent  # not asked


def test_the_pools_say_what_only_orders_and_nothing_is_blocked_by_host_errors(servers):
    flaky, backup, gateway = servers
    load(servers, "503")
    states = gateway.credentials()["providers"]["flaky"]
    assert states["breaker"]["state"] == "closed"  # 5 % is no rate to stop sending at
    assert all(c["firm"] is False for credential in states["credentials"] for c in credential["cooldowns"])

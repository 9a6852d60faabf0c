"""The attempt engine without I/O: the steps it asks for, fed made-up outcomes, and the
pieces both send paths share (failures, the stream gate, the ping pulse). Pools with a
fake clock; no network, no mitmproxy. The send paths themselves are tested against
the real gateway (test_failover.py, test_router.py and the rest)."""

from __future__ import annotations

import json

from pooling import Clock, load, provider

from modelmux import attempt, routing
from modelmux.attempt import Attempts, Gate, GiveUp, Pause, Pick, Pulse, Send
from modelmux.translate.passthrough import AnthropicEvents
from modelmux.credentials.pools import Lease, Pools
from modelmux.translate.sse import format_event

CONFIG = load("providers:\n" + provider("zai", "a", "b") + provider("backup", "solo")
              + "  mine: {protocol: anthropic, base_url: 'https://mine', auth: passthrough}\n"
              + "routes:\n  - {match: 'glm-*', provider: zai, fallback: [backup, mine]}\n"
              + "  - {match: 'solo-*', provider: backup}\n")
CANDIDATES = routing.candidates(CONFIG, routing.route(CONFIG, "glm-1"))
ZAI, BACKUP, MINE = CANDIDATES
SOLO = routing.route(CONFIG, "solo-1")
ENVELOPE = b'{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}'


def engine(candidates: list[routing.Decision], max_attempts: int = 6) -> tuple[Attempts, Pools, Clock]:
    clock = Clock()
    pools = Pools(CONFIG, clock)
    return Attempts(candidates, max_attempts, pools.admits, clock, jitter=lambda low, high: low), pools, clock


def run(attempts: Attempts, pools: Pools, answers: dict[str, object]) -> tuple[list[str], object]:
    """Drive `attempts` as a driver would: each Send answered by `answers[label]` (a
    status, or "ok"); returns what was done, in order, and the last step."""
    done: list[str] = []
    step = attempts.start()
    while step is not None and not isinstance(step, GiveUp):
        if isinstance(step, Pick):
            picked = pools.pick(step.candidate.provider.name, step.candidate.upstream_model, exclude=step.tried)
            done.append(f"pick {step.candidate.provider.name} -{','.join(sorted(step.tried))}")
            step = attempts.picked(picked)
        elif isinstance(step, Send):
            label = step.lease.credential.label if step.lease else "none"
            done.append(f"send {step.candidate.provider.name}/{label}")
            outcome = answers[label]
            if outcome == "ok":
                if step.lease:
                    pools.record(step.lease, 200)
                step = attempts.sent(None)
                continue
            failure = attempt.refused(step.candidate, label, outcome, "Error", ENVELOPE.decode(), {}, None, 0.0)
            if step.lease:
                failure = attempt.judged(failure, pools.record(step.lease, failure.outcome, body=failure.said))
            step = attempts.sent(failure)
        else:
            assert isinstance(step, Pause)
            done.append(f"pause {step.seconds}")
            step = attempts.paused()
    return done, step


def test_a_rate_limited_credential_is_followed_by_the_next_and_the_answer_ends_the_attempts():
    attempts, pools, _ = engine(CANDIDATES)
    done, step = run(attempts, pools, {"a": 429, "b": "ok"})
    assert done == ["pick zai -", "send zai/a", "pick zai -a", "send zai/b"]
    assert step is None and attempts.answered


def test_a_request_the_upstream_calls_faulty_is_not_tried_again_and_gets_the_upstreams_words():
    attempts, pools, _ = engine(CANDIDATES)
    done, step = run(attempts, pools, {"a": 400})
    assert done == ["pick zai -", "send zai/a"]
    assert isinstance(step, GiveUp) and (step.status, step.body, step.headers) == (400, ENVELOPE, {})


def test_host_errors_everywhere_earn_one_more_round_after_a_pause_then_a_summary():
    attempts, pools, _ = engine(CANDIDATES, max_attempts=8)
    done, step = run(attempts, pools, {"a": 503, "b": 503, "solo": 503, "none": 503})
    one_round = ["pick zai -", "send zai/a", "pick zai -a", "send zai/b", "pick zai -a,b",  # the pool has no third
                 "pick backup -", "send backup/solo", "pick backup -solo", "send mine/none"]
    assert done == [*one_round, "pause 0.5", *one_round]
    assert isinstance(step, GiveUp) and step.status == 503
    assert json.loads(step.body)["error"]["type"] == "overloaded_error"
    assert step.message.startswith("no upstream could serve model 'glm-1' (8 attempts): zai/a 503; zai/b 503; ")
    assert attempts.rounds == 2


def test_one_upstream_and_one_attempt_gives_its_own_error_with_the_wait_the_pool_knows():
    """mitmproxy's own path: a single attempt. A refused key blocks its credential, and
    the client hears when it is back; a 429 that named no wait only orders the pool's
    credentials (a soft cooldown), so no wait is made up for it."""
    attempts, pools, _ = engine([SOLO], max_attempts=1)
    done, step = run(attempts, pools, {"solo": 401})
    assert done == ["pick backup -", "send backup/solo"]
    assert isinstance(step, GiveUp) and (step.status, step.body) == (401, ENVELOPE)
    assert int(step.headers["retry-after"]) > 0
    attempts, pools, _ = engine([SOLO], max_attempts=1)
    done, step = run(attempts, pools, {"solo": 429})
    assert isinstance(step, GiveUp) and (step.status, step.headers) == (429, {})


def test_a_pool_that_refuses_before_any_attempt_is_the_clients_answer():
    attempts, pools, _ = engine([SOLO], max_attempts=1)
    lease = pools.pick("backup", "solo-1")
    assert isinstance(lease, Lease)
    pools.record(lease, 429, headers={"retry-after": "30"})
    done, step = run(attempts, pools, {})
    assert done == ["pick backup -"]
    assert isinstance(step, GiveUp) and step.status == 429 and step.headers["retry-after"] == "30"


def test_a_wait_only_the_body_names_becomes_retry_after():
    body = json.dumps({"error": {"type": "usage_limit_reached", "message": "limit", "resets_in_seconds": 42}})
    failure = attempt.refused(SOLO, "solo", 429, "Too Many Requests", body, {}, None, 0.0)
    assert failure.headers == {"retry-after": "42", "retry-after-ms": "42000"}
    assert failure.said == body


def test_the_words_for_a_failed_connection_are_the_same_on_both_paths():
    where = "provider 'zai' (https://zai/v1/messages)"
    failure = attempt.failed(ZAI, "a", "timeout", attempt.not_answered(where, 2))
    assert (failure.status, failure.kind) == (504, "unreachable")
    assert json.loads(failure.body)["error"]["message"] == f"{where} did not answer within 2 s (response_timeout)"
    assert attempt.failed(ZAI, "a", "connect", attempt.cannot_connect(where, "refused")).status == 502


def test_the_gate_holds_a_stream_until_its_first_real_event():
    reader, gate = AnthropicEvents(), Gate()
    start = format_event("message_start", {"type": "message_start", "message": {"usage": {"input_tokens": 3}}})
    assert gate.feed(reader.feed(start), reader) == []
    delta = format_event("content_block_start", {"type": "content_block_start", "index": 0})
    assert gate.feed(reader.feed(delta), reader) == [start, delta]
    assert gate.committed and gate.feed([b"x"], reader) == [b"x"]


def test_the_gate_drops_a_stream_whose_error_comes_before_any_content():
    reader, gate = AnthropicEvents(), Gate()
    start = format_event("message_start", {"type": "message_start", "message": {}})
    error = format_event("error", {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}})
    assert gate.feed(reader.feed(start), reader) == []
    assert gate.feed(reader.feed(error), reader) == []
    assert gate.failed_with is not None and not gate.committed
    assert (gate.failed_with.status, gate.failed_with.error_type, gate.failed_with.message) == (529, "overloaded_error", "busy")


def test_the_pulse_pings_after_an_interval_of_silence_only():
    pulse = Pulse(10, last=100.0)
    assert pulse.wait(104.0) == 6.0 and not pulse.beat(109.9)
    assert pulse.beat(110.0) and pulse.wait(110.0) == 10.0
    pulse.heard(115.0)
    assert not pulse.beat(120.0) and pulse.beat(125.0)
    assert Pulse(0, last=0.0).wait(5.0) is None and not Pulse(0, last=0.0).beat(99.0)


def test_a_stream_that_broke_off_ends_with_one_error_event_naming_the_provider():
    message, event = attempt.broke_off("zai", "connection reset")
    assert message == "provider 'zai' broke off its answer mid-stream: connection reset"
    assert event == format_event("error", {"type": "error", "error": {"type": "api_error", "message": message}})

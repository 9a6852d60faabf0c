"""Replay: every curated recording in recordings/ against the current code, and the
comparison that decides whether an answer changed.

A failure here means a change altered what a client receives, or what is sent upstream,
for a recorded exchange. If the change is intended, regenerate the expectations:
`modelmux replay --update recordings/FILE.mitm` (or re-record: tests/record_cases.py).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

from modelmux.addons import recordings, replayer
from modelmux.replay import Answer, Sent, Side, differences, events

REPO = Path(__file__).resolve().parent.parent
FILES = sorted((REPO / "recordings").glob("*.mitm"))
CASES = [(path, name) for path in FILES for name in replayer.names(path, recordings.read(path))]


@functools.cache
def replayed(path: Path) -> dict[str, replayer.Result]:
    """Each file once: its flows are a session and share one gateway."""
    return {result.name: result for result in replayer.replay_file(path)}


@pytest.mark.parametrize(("path", "name"), CASES, ids=[name for _, name in CASES])
def test_a_recording_replays_as_recorded(path: Path, name: str) -> None:
    result = replayed(path)[name]
    assert result.skipped is None, f"{name} was not replayed: {result.skipped}"
    assert not result.diff, (
        f"{name}: the answer or the upstream requests changed (recorded → now):\n{result.diff}\n"
        f"If the change is intended: modelmux replay --update {path.relative_to(REPO)}"
    )


# ---- the comparison ----------------------------------------------------------------------

def sse(*items: tuple[str, dict]) -> bytes:
    return b"".join(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in items)


START = ("message_start", {"type": "message_start", "message": {"id": "msg_01AbCdEf", "model": "claude-x"}})
TOOL = ("content_block_start", {"type": "content_block_start", "index": 0,
                                "content_block": {"type": "tool_use", "id": "toolu_01XyZ", "name": "f", "input": {}}})
DELTA = ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "Hello"}})
PING = ("ping", {"type": "ping"})
STREAM = [("content-type", "text/event-stream"), ("date", "Mon, 01 Jan 2026 00:00:00 GMT")]
UPSTREAM = Sent("POST", "/v1/chat/completions", b'{"model":"gpt-test"}',
                [("authorization", "Bearer oai-main…1111"), ("host", "api.openai.com")])


def side(*items: tuple[str, dict], headers=STREAM, sent=(UPSTREAM,)) -> Side:
    return Side(Answer(200, list(headers), sse(*items)), list(sent))


def test_what_changes_from_run_to_run_is_not_a_difference() -> None:
    recorded = side(START, TOOL, PING, DELTA)
    now = Side(
        Answer(200, [("Content-Type", "text/event-stream"), ("date", "Tue, 02 Jan 2026 10:00:00 GMT"),
                     ("transfer-encoding", "chunked")],
               sse(("message_start", {"type": "message_start", "message": {"id": "msg_99ZzZz", "model": "claude-x"}}),
                   ("content_block_start", {**TOOL[1], "content_block": {**TOOL[1]["content_block"], "id": "toolu_77abcd"}}),
                   DELTA, PING, PING)),
        [Sent("POST", "/v1/chat/completions", b'{"model":"gpt-test"}',
              [("authorization", "Bearer oai-main…9999"), ("host", "127.0.0.1:4000")])],
    )  # fmt: skip
    assert differences(recorded, now) == ""


def test_a_changed_event_is_a_diff_that_names_it() -> None:
    changed = ("content_block_delta", {**DELTA[1], "delta": {"type": "text_delta", "text": "Goodbye"}})
    diff = differences(side(START, PING, DELTA), side(START, changed), "rec.mitm#1")
    assert diff.splitlines()[:2] == ["--- recorded rec.mitm#1", "+++ now rec.mitm#1"]
    assert "@@ client received: event 2 content_block_delta" in diff.splitlines()[2]
    assert '-    "text": "Hello"' in diff.splitlines() and '+    "text": "Goodbye"' in diff.splitlines()


def test_a_changed_upstream_request_is_a_diff_that_names_it() -> None:
    now = Sent("POST", "/v1/chat/completions", b'{"model":"gpt-test","stream":true}', UPSTREAM.headers)
    diff = differences(side(START), side(START, sent=(now,))).splitlines()
    assert "-── upstream request 1: POST /v1/chat/completions (20 bytes) ──" in diff
    assert '+  "stream": true' in diff


def test_ids_keep_their_cross_references() -> None:
    """Two tool calls whose ids swap places are a difference: placeholders number ids in
    order of appearance, so a tool_result's pointer to its tool_use stays visible."""
    a = Side(Answer(200, [("content-type", "application/json")], b'{"ids": ["toolu_01aaaa", "toolu_01bbbb", "toolu_01aaaa"]}'))
    b = Side(Answer(200, [("content-type", "application/json")], b'{"ids": ["toolu_01aaaa", "toolu_01bbbb", "toolu_01bbbb"]}'))
    assert differences(a, b) != ""


def test_formatting_only_changes_to_an_upstream_body_still_show() -> None:
    """Server replay matches request bodies byte for byte, so a re-spaced body would no
    longer be answered: the byte count makes that visible."""
    spaced = Sent("POST", UPSTREAM.path, b'{"model": "gpt-test"}', UPSTREAM.headers)
    assert "(21 bytes)" in differences(side(START), side(START, sent=(spaced,)))


def test_timestamps_durations_and_retry_after_are_normalised() -> None:
    error = {"type": "error", "error": {"type": "rate_limit_error",
                                        "message": "every upstream is rate limited; the first recovers at "}}
    def answer(when: str, wait: str, retry: str) -> Side:
        body = json.loads(json.dumps(error))
        body["error"]["message"] += f"{when} (in {wait})"
        return Side(Answer(429, [("retry-after", retry), ("content-type", "application/json")], json.dumps(body).encode()))
    assert differences(answer("2026-01-01T00:00:07Z", "7 s", "7"), answer("2026-03-01T10:11:12Z", "1 min 2 s", "62")) == ""


def test_events_without_event_lines_take_their_type() -> None:
    assert events(b'data: {"type": "x"}\n\ndata: [DONE]\n\nevent: ping\ndata: {}\n\ndata: {"cut') == [
        ("x", '{"type": "x"}'), ("message", "[DONE]"), ("message", '{"cut'),
    ]  # fmt: skip

"""Replay: every curated recording in recordings/ against the current code, and the
comparison that decides whether an answer changed.

A failure here means a change altered what a client receives, or what is sent upstream,
for a recorded exchange. If the change is intended, regenerate the expectations:
`modelmux replay --update recordings/FILE.mitm` (or re-record: tests/record_cases.py).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from openai_upstream import completion
from upstream import Reply, Upstream

from modelmux.addons import replayer
from modelmux.cli import main as cli
from modelmux.replay import recordings
from modelmux.replay.compare import Answer, Sent, Side, differences, events

REPO = Path(__file__).resolve().parent.parent
FILES = sorted((REPO / "recordings").glob("*.mitm"))
CASES = [(path, name) for path in FILES for name in replayer.names(path, recordings.read(path))]


@pytest.fixture(scope="module")
def replayed() -> Iterator[Callable[[Path], dict[str, replayer.Result]]]:
    """Each file replayed once (its flows are a session), all by one Replayer: one replay
    server, and one gateway for the recordings that share a routes.yaml."""
    with replayer.Replayer() as replaying:
        yield functools.cache(lambda path: {r.name: r for r in replaying.replay_file(path)})


@pytest.mark.parametrize(("path", "name"), CASES, ids=[name for _, name in CASES])
def test_a_recording_replays_as_recorded(replayed, path: Path, name: str) -> None:
    result = replayed(path)[name]
    assert result.skipped is None, f"{name} was not replayed: {result.skipped}"
    assert not result.diff, (
        f"{name}: the answer or the upstream requests changed (recorded → now):\n{result.diff}\n"
        f"If the change is intended: modelmux replay --update {path.relative_to(REPO)}"
    )


def test_a_changed_answer_fails_with_a_diff_naming_the_event_and_update_accepts_it(tmp_path: Path) -> None:
    """The suite can fail: a recording whose expected answer no longer matches what the
    current code answers (here the expectation is edited; a translation change does the
    same from the other side) gives a readable diff naming the event, and `--update`
    makes the current answer the expectation."""
    copy = tmp_path / "openai-chat-text.mitm"
    flows = recordings.read(REPO / "recordings" / copy.name)
    stream = flows[1].response
    assert b'"text":"How "' in stream.content
    stream.content = stream.content.replace(b'"text":"How "', b'"text":"Who "')
    recordings.write(copy, flows)

    assert cli.main(["replay", str(copy)]) == 1
    results = replayer.replay_file(copy)
    assert [bool(r.diff) for r in results] == [False, True]
    diff = results[1].diff.splitlines()
    assert diff[:2] == [f"--- recorded {copy.name}#2 POST /v1/messages gpt-chat",
                        f"+++ now {copy.name}#2 POST /v1/messages gpt-chat"]
    assert diff[2].endswith(" client received: event 4 content_block_delta")
    assert [line for line in diff if line[:1] in "-+" and line[:3] not in ("---", "+++")] == [
        '-    "text": "Who "', '+    "text": "How "']

    assert cli.main(["replay", "--update", str(copy)]) == 0
    assert cli.main(["replay", str(copy)]) == 0
    assert b'"text":"How "' in recordings.read(copy)[1].response.content


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


def test_modelmuxs_own_version_in_a_user_agent_is_normalised() -> None:
    """A third party gets `user-agent: modelmux/VERSION`: a release is no change in what is sent."""
    def sent(agent: str) -> Side:
        return side(START, sent=(Sent("POST", UPSTREAM.path, UPSTREAM.body, [("user-agent", agent)]),))
    assert differences(sent("modelmux/0.1.0"), sent("modelmux/1.2.3rc1")) == ""
    assert differences(sent("modelmux/0.1.0"), sent("claude-cli/2.1.0")) != ""


def test_events_without_event_lines_take_their_type() -> None:
    assert events(b'data: {"type": "x"}\n\ndata: [DONE]\n\nevent: ping\ndata: {}\n\ndata: {"cut') == [
        ("x", '{"type": "x"}'), ("message", "[DONE]"), ("message", '{"cut'),
    ]  # fmt: skip


# ---- scrubbing, end to end ---------------------------------------------------------------

def test_a_recorded_session_holds_no_secret(start_gateway, tmp_path: Path) -> None:
    """Every secret the gateway knows, a client's token, and keys nobody configured (in a
    prompt, a query, an upstream's echo) are gone from the file; the flows are all there."""
    secrets = {
        "VENDOR_KEY": "vendor-key-aaaaaaaaaaaa1111",  # no known shape: scrubbed by value
        "OPENAI_KEY": "sk-proj-bbbbbbbbbbbbbbbbbbbb2222",
        "QUERY_KEY": "query-key-cccccccccccc3333",  # a provider's query parameter: by its name
        "GATEWAY_KEY": "gateway-key-dddddddddddd4444",
    }
    client_token = "sk-ant-oat01-client-token-eeee5555"
    stranger = "sk-ant-api03-nobody-configured-this-ffff6666"  # in the prompt: by its shape
    record = tmp_path / "session.mitm"
    with Upstream() as anthropic_up, Upstream() as openai_up:
        anthropic_up.reply = lambda r: Reply(401, json.dumps({"type": "error", "error": {
            "type": "authentication_error", "message": f"invalid x-api-key {r.headers.get('x-api-key')}"}}).encode())
        openai_up.reply = lambda r: Reply(body=json.dumps(completion(f"you said {r.json()['messages'][0]['content']}")).encode())
        routes = f"""
server: {{api_key: "${{GATEWAY_KEY}}"}}
providers:
  anthropic: {{protocol: anthropic, base_url: "{anthropic_up.url}", auth: passthrough}}
  vendor: {{protocol: anthropic, base_url: "{anthropic_up.url}/vendor", credentials: [{{label: vendor-main, key: "${{VENDOR_KEY}}"}}]}}
  openai:
    protocol: openai-chat
    base_url: "{openai_up.url}/v1"
    query: {{api-key: "${{QUERY_KEY}}"}}
    credentials: [{{label: openai-main, key: "${{OPENAI_KEY}}"}}]
routes:
  - {{match: "glm-*", provider: vendor}}
  - {{match: "gpt-*", provider: openai}}
default: {{provider: anthropic}}
"""
        gateway = start_gateway(routes, secrets, ["--set", f"modelmux_record={record}"])
        headers = {"x-api-key": client_token, "x-modelmux-key": secrets["GATEWAY_KEY"]}
        for model in ("claude-x", "glm-4.6", "gpt-4o"):
            body = {"model": model, "max_tokens": 5, "messages": [{"role": "user", "content": f"my key is {stranger}"}]}
            httpx.post(f"{gateway.url}/v1/messages", json=body, headers=headers, timeout=10)
        assert openai_up.received[0].path == f"/v1/chat/completions?api-key={secrets['QUERY_KEY']}"
        assert anthropic_up.received[0].headers["x-api-key"] == client_token  # the upstreams got the real ones
        gateway.stop()
    saved = record.read_bytes()
    for secret in [*secrets.values(), client_token, stranger]:
        assert secret.encode() not in saved, secret
    flows = recordings.read(record)
    assert [f.metadata["modelmux"]["summary"]["requested_model"] for f in flows] == ["claude-x", "glm-4.6", "gpt-4o"]
    assert [f.response.status_code for f in flows] == [401, 401, 200]
    assert flows[1].request.headers["x-api-key"] == "vendor-main…1111"
    assert b"invalid x-api-key vendor-main\xe2\x80\xa61111" in flows[1].response.content
    assert flows[2].request.path == "/v1/chat/completions?api-key=REDACTED"
    assert b"my key is sk-ant-REDACTED" in flows[2].response.content

"""Reading a recorded flow: the upstream answers to play back, what to send, what to expect."""

from __future__ import annotations

import json
from pathlib import Path

from mitmproxy import http
from mitmproxy.test import tflow, tutils

from modelmux.replay import recordings
from modelmux.replay.compare import Answer, Sent
from modelmux.replay.recordings import RECORD_VERSION, Recording

CLIENT_BODY = json.dumps({"model": "claude-x", "max_tokens": 5, "messages": []}).encode()
UPSTREAM_BODY = b'{"model":"gpt-test","max_tokens":5,"messages":[]}'
TRANSLATED = b"event: message_start\ndata: {}\n\n"
RAW = b'data: {"choices":[]}\n\ndata: [DONE]\n\n'


def failover_flow() -> http.HTTPFlow:
    """A flow as recorded after a 429 from the first key, a 200 from the second."""
    flow = tflow.tflow(
        req=tutils.treq(method=b"POST", host="api.example.com", port=443, scheme=b"https",
                        path=b"/v1/chat/completions?api-version=1", content=UPSTREAM_BODY,
                        headers=((b"authorization", b"Bearer key-b\xe2\x80\xa6bbbb"),)),
        resp=tutils.tresp(content=TRANSLATED, headers=((b"content-type", b"text/event-stream"),)),
    )  # fmt: skip
    flow.metadata["modelmux"] = {
        "summary": {"kind": "routed", "requested_model": "claude-x", "profile": None},
        "client_request": {"method": "POST", "path": "/v1/messages?beta=true",
                           "headers": [["x-api-key", "client…1234"], ["content-type", "application/json"]],
                           "body": CLIENT_BODY},
        "upstream_response": {"status": 200, "headers": [["content-type", "text/event-stream"]], "body": RAW},
        "attempts": [
            {"provider": "oai", "credential": "key-a", "upstream": "https://api.example.com/v1/chat/completions",
             "status": 429, "outcome": 429, "request_body": None,
             "response_headers": [["retry-after", "7"], ["content-type", "application/json"]],
             "response_body": b'{"error": {"message": "slow down"}}'},
            {"provider": "oai", "credential": "key-b", "upstream": "https://api.example.com/v1/chat/completions",
             "status": 200, "outcome": 200},
        ],
        "record": {"version": RECORD_VERSION, "routes": "providers: {}\n"},
    }  # fmt: skip
    return flow


def test_each_attempt_becomes_an_upstream_flow_in_order() -> None:
    flows = Recording(failover_flow(), "x").upstream_flows()
    assert [(f.request.url, f.request.content, f.response.status_code) for f in flows] == [
        ("http://127.0.0.1:9/v1/chat/completions?api-version=1", UPSTREAM_BODY, 429),
        ("http://127.0.0.1:9/v1/chat/completions?api-version=1", UPSTREAM_BODY, 200),
    ]
    assert flows[0].response.content == b'{"error": {"message": "slow down"}}'
    assert flows[0].response.headers["retry-after"] == "7"
    assert flows[1].response.content == RAW  # the raw upstream stream, not the translated one
    assert flows[0].metadata == {} and flows[0].id != flows[1].id


def test_what_to_send_and_what_to_expect() -> None:
    recording = Recording(failover_flow(), "x")
    assert recording.problem() is None
    assert recording.client_request() == (
        "POST", "/v1/messages?beta=true", [("x-api-key", "client…1234"), ("content-type", "application/json")], CLIENT_BODY,
    )  # fmt: skip
    expected = recording.expected()
    assert expected.answer == Answer(200, [("content-type", "text/event-stream")], TRANSLATED)
    assert expected.sent == [
        Sent("POST", "/v1/chat/completions?api-version=1", UPSTREAM_BODY),
        Sent("POST", "/v1/chat/completions?api-version=1", UPSTREAM_BODY, [("authorization", "Bearer key-b…bbbb")]),
    ]


def test_a_flow_answered_locally_sends_nothing_upstream() -> None:
    flow = failover_flow()
    flow.metadata["modelmux"]["summary"]["kind"] = "refused"
    recording = Recording(flow, "x")
    assert recording.upstream_flows() == [] and recording.expected().sent == []
    assert recording.client_request()[3] == CLIENT_BODY


def test_why_a_flow_cannot_be_replayed() -> None:
    bare = tflow.tflow(resp=True)
    assert Recording(bare, "x").problem() == (
        "not recorded by `modelmux serve --record` (it has no modelmux record metadata)")
    old = failover_flow()
    old.metadata["modelmux"]["record"]["version"] = 0
    assert Recording(old, "x").problem() == f"recorded in format 0; this modelmux replays format {RECORD_VERSION}"
    gone = failover_flow()
    gone.response, gone.error = None, tflow.terr("Client disconnected.")
    assert Recording(gone, "x").problem() == (
        "the client got no complete answer (Client disconnected.), so there is nothing to compare")
    refused = failover_flow()
    refused.metadata["modelmux"]["attempts"][0].update(status=None, outcome="connect")
    assert Recording(refused, "x").problem() == (
        "upstream attempt 1 got no HTTP answer (connect); server replay can only play back answers")


def test_an_update_takes_the_runs_expectations_and_keeps_the_recorded_inputs(tmp_path: Path) -> None:
    recorded = failover_flow()
    now = failover_flow()
    now.request.url = "http://127.0.0.1:5555/v1/chat/completions?api-version=1"
    now.request.content = b'{"model":"gpt-test","changed":true}'
    now.response.content = b"event: message_stop\ndata: {}\n\n"
    now.metadata["modelmux"]["attempts"][0]["upstream"] = "http://127.0.0.1:5555/v1/chat/completions"
    now.metadata["modelmux"]["client_request"]["headers"] = [["x-api-key", "client…oken"]]
    now.metadata["modelmux"]["record"]["routes"] = "the replay's"
    now.request.headers["x-modelmux-replay"] = "3"
    updated = Recording(recorded, "x").updated(now)
    assert updated.request.url == "https://api.example.com/v1/chat/completions?api-version=1"
    assert updated.request.content == b'{"model":"gpt-test","changed":true}'
    assert "x-modelmux-replay" not in updated.request.headers
    assert updated.response.content == b"event: message_stop\ndata: {}\n\n"
    notes = updated.metadata["modelmux"]
    assert notes["attempts"][0]["upstream"] == "https://api.example.com/v1/chat/completions"
    assert notes["client_request"] == recorded.metadata["modelmux"]["client_request"]
    assert notes["record"] == recorded.metadata["modelmux"]["record"]
    path = tmp_path / "rec.mitm"
    recordings.write(path, [updated, recorded])
    assert [f.response.content for f in recordings.read(path)] == [b"event: message_stop\ndata: {}\n\n", TRANSLATED]


def test_a_head_request_expects_no_body_whatever_the_record_holds() -> None:
    """mitmproxy keeps the body a local answer was made with, but a client reads none."""
    flow = failover_flow()
    flow.metadata["modelmux"]["client_request"]["method"] = "HEAD"
    assert Recording(flow, "x").expected().answer.body == b""


def test_an_update_of_a_local_answer_keeps_the_clients_request() -> None:
    recorded = failover_flow()
    recorded.metadata["modelmux"]["summary"]["kind"] = "local"
    now = failover_flow()
    now.metadata["modelmux"]["summary"]["kind"] = "local"
    now.request.headers["x-modelmux-replay"] = "0"
    now.response.content = b"{}"
    updated = Recording(recorded, "x").updated(now)
    assert updated.request.headers.fields == recorded.request.headers.fields
    assert updated.response.content == b"{}"

"""SSE framing and the response-model restorer, fed at every chunk boundary."""

import json

import pytest

from modelmux.translate.passthrough import SCAN_LIMIT, ModelRestorer, restore_model_json
from modelmux.translate.sse import EventSplitter, format_event, parse_event

START = {"type": "message_start", "message": {"id": "msg_1", "model": "glm-4.6", "content": []}}
STREAM = (
    b"event: message_start\ndata: " + json.dumps(START).encode() + b"\n\n"
    b"event: ping\ndata: {\"type\": \"ping\"}\n\n"
    b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"h\xc3\xa9\"}}\n\n"
)
RESTORED = format_event("message_start", {**START, "message": {**START["message"], "model": "opus"}}) + STREAM[
    STREAM.index(b"event: ping") :
]


def feed_in_pieces(transform: ModelRestorer, data: bytes, size: int) -> bytes:
    out = []
    for i in range(0, len(data), size):
        pieces = transform.feed(data[i : i + size])
        assert b"" not in pieces  # b"" would end a chunked HTTP/1.1 body early
        out += pieces
    out += transform.close()
    return b"".join(out)


@pytest.mark.parametrize("size", [1, 2, 7, 37, 1000])
def test_restorer_rewrites_message_start_only(size: int):
    assert feed_in_pieces(ModelRestorer("opus"), STREAM, size) == RESTORED


def test_restorer_passes_later_chunks_through_untouched():
    restorer = ModelRestorer("opus")
    first = b"".join(restorer.feed(STREAM[:200]))
    assert first.startswith(b"event: message_start\ndata: {\"type\":\"message_start\"")
    assert restorer.feed(b"anything at all") == [b"anything at all"]


def test_restorer_handles_crlf_events():
    crlf = STREAM.replace(b"\n", b"\r\n")
    out = feed_in_pieces(ModelRestorer("opus"), crlf, 5)
    assert parse_event(out[: out.index(b"\n\n") + 2]).json()["message"]["model"] == "opus"
    assert out.endswith(crlf[crlf.index(b"event: ping") :])


def test_restorer_gives_up_on_streams_without_message_start():
    other = b"data: " + b"x" * (SCAN_LIMIT + 10) + b"\n\n" + b"data: tail"
    assert feed_in_pieces(ModelRestorer("opus"), other, 4096) == other


def test_restore_model_json():
    body = json.dumps({"id": "m", "model": "glm-4.6", "content": [{"type": "text", "text": "é"}]}).encode()
    assert json.loads(restore_model_json(body, "opus")) == {"id": "m", "model": "opus", "content": [{"type": "text", "text": "é"}]}
    assert restore_model_json(json.dumps({"input_tokens": 3}).encode(), "opus") is None
    assert restore_model_json(b"not json", "opus") is None


def test_splitter_reassembles_events_split_anywhere():
    splitter = EventSplitter()
    events = []
    for byte in range(len(STREAM)):
        events += splitter.feed(STREAM[byte : byte + 1])
    assert b"".join(events) == STREAM
    assert [parse_event(e).name for e in events] == ["message_start", "ping", "content_block_delta"]
    assert parse_event(events[2]).json()["delta"]["text"] == "hé"
    assert splitter.rest() == b""


def test_parse_event_joins_data_lines():
    event = parse_event(b"event: x\r\ndata: {\"a\":\r\ndata: 1}\r\n: comment\r\n\r\n")
    assert (event.name, event.data) == ("x", "{\"a\":\n1}")


def test_a_restored_model_is_the_only_change_to_the_upstreams_bytes():
    body = '{ "id" : "m",\n  "model": "glm-4.6", "content": [{"type": "text", "text": "caf\u00e9 \\u00e9"}] }\n'.encode()
    restored = restore_model_json(body, "claude-\u00e9")
    assert restored == body.replace(b'"glm-4.6"', b'"claude-\\u00e9"')
    twice = b'{"model": "a", "id": "m", "model": "glm-4.6"}'  # json reads the last: it is written again
    assert restore_model_json(twice, "opus") == b'{"model":"opus","id":"m"}'

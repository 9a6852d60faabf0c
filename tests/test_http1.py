"""HTTP/1.1 for the relay's Sender (modelmux/attempt/http1.py), pure: an answer's
bytes fed whole and at every split, and the request heads it refuses to write."""

from __future__ import annotations

import pytest

from modelmux.attempt.http1 import Answer, Head, ProtocolError, request_head

STREAM = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
          b"a;name=value\r\nevent: a\n\n\r\n"  # a chunk extension is skipped
          b"A\r\nevent: b\n\n\r\n"
          b"0\r\nx-trailer: 1\r\n\r\n")


def read(data: bytes, splits: list[int] = (), close: bool = False) -> tuple[Head, bytes, Answer]:
    """Feeds `data` cut at `splits`, reading head and body as they come; `close`: the
    upstream closes its end after the last byte."""
    answer, head, body = Answer(), None, b""
    cuts = [0, *splits, len(data)]
    for start, end in zip(cuts, cuts[1:]):
        answer.feed(data[start:end])
        if head is None:
            head = answer.head()
        if head is not None:
            body += answer.body()
    if close:
        answer.feed(b"")
        head = head or answer.head()
        body += answer.body()
    assert head is not None
    return head, body, answer


def every_split(data: bytes):
    return [[i] for i in range(1, len(data))]


def test_a_chunked_stream_at_any_split():
    for splits in [[], *every_split(STREAM), list(range(1, len(STREAM)))]:  # whole, cut once, byte by byte
        head, body, answer = read(STREAM, splits)
        assert head == Head(200, "OK", [("content-type", "text/event-stream"), ("transfer-encoding", "chunked")], "1.1")
        assert body == b"event: a\n\nevent: b\n\n"
        assert answer.ended and answer.reusable


def test_each_read_gives_what_came_of_the_body():
    answer = Answer()
    answer.feed(STREAM[:106])  # the first chunk and its CRLF
    assert answer.head() is not None
    assert answer.body() == b"event: a\n\n"
    assert answer.body() == b""  # nothing new
    answer.feed(STREAM[106:])
    assert answer.body() == b"event: b\n\n" and answer.ended


def test_a_content_length_body_at_any_split():
    data = b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\n{\"a\":1}"
    for splits in [[], *every_split(data)]:
        head, body, answer = read(data, splits)
        assert (head.status, body, answer.ended, answer.reusable) == (200, b'{"a":1}', True, True)


@pytest.mark.parametrize("data, reusable", [
    (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive, close\r\n\r\n{}", False),
    (b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\n{}", False),  # as h11 takes 1.0: closed after
    (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}extra", False),  # bytes nobody asked for
    (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}", True),
])
def test_whether_the_connection_can_take_another_request(data, reusable):
    _, body, answer = read(data)
    assert body == b"{}" and answer.ended and answer.reusable is reusable


def test_a_body_without_length_ends_when_the_upstream_closes():
    _, body, answer = read(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{\"a\"", [40])
    assert not answer.ended
    _, body, answer = read(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{\"a\":1}", [40], close=True)
    assert body == b'{"a":1}' and answer.ended and not answer.reusable


def test_transfer_encoding_wins_over_content_length_and_closes():
    data = b"HTTP/1.1 200 OK\r\ncontent-length: 99\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    _, body, answer = read(data)
    assert body == b"{}" and answer.ended and not answer.reusable


def test_a_coding_other_than_chunked_last_is_read_until_close():
    _, body, answer = read(b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\nxyz", close=True)
    assert body == b"xyz" and answer.ended and not answer.reusable


@pytest.mark.parametrize("status", [204, 304])
def test_answers_without_a_body(status):
    head, body, answer = read(b"HTTP/1.1 %d Nothing\r\ncontent-length: 5\r\n\r\n" % status)
    assert (head.status, body, answer.ended, answer.reusable) == (status, b"", True, True)


def test_interim_answers_are_skipped():
    data = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
    for splits in [[], *every_split(data)]:
        head, body, answer = read(data, splits)
        assert (head.status, head.fields, body, answer.ended) == (200, [("content-length", "0")], b"", True)


def test_the_head_as_it_came():
    data = (b"HTTP/1.1 429 \r\nRetry-After: 3\r\nx-a:1\r\nx-a: 2 \r\nx-folded: one\r\n\ttwo\r\n"
            b"content-length: 0\r\n\r\n")
    head, _, _ = read(data)
    assert head == Head(429, "", [("retry-after", "3"), ("x-a", "1"), ("x-a", "2"), ("x-folded", "one two"),
                                  ("content-length", "0")], "1.1")
    bare_lf, _, _ = read(b"HTTP/1.1 200\ncontent-length: 0\n\n")  # lines ended by LF alone, and no reason
    assert (bare_lf.status, bare_lf.reason, bare_lf.fields) == (200, "", [("content-length", "0")])


@pytest.mark.parametrize("data, message", [
    (b"SSH-2.0-OpenSSH\r\n\r\n", "does not start with an HTTP/1.x status line"),
    (b"HTTP/2 200\r\n\r\n", "does not start with an HTTP/1.x status line"),
    (b"HTTP/1.1 200 OK\r\nx-key sk-secret-value\r\n\r\n", "not `name: value`"),
    (b"HTTP/1.1 200 OK\r\nx-key : v\r\n\r\n", "not `name: value`"),
    (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n", "not one number: 2, 3"),
    (b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n", "not one number: -1"),
    (b"HTTP/1.1 101 Switching Protocols\r\nupgrade: h2c\r\n\r\n", "switched protocols"),
    (b"HTTP/1.1 200 OK\r\n" + b"x: " + b"y" * 70_000, "longer than 64 KB"),
])
def test_a_head_that_is_not_http(data, message):
    answer = Answer()
    answer.feed(data)
    with pytest.raises(ProtocolError, match=message) as refused:
        answer.head()
    assert b"sk-secret" not in str(refused.value).encode()


@pytest.mark.parametrize("body, message", [
    (b"zz\r\n", "a size in hex was expected"),
    (b"2\r\n{}}\r\n", "longer than its size said"),
    (b"2" * 5000, "too long"),
])
def test_a_chunked_body_that_is_not_chunked(body, message):
    answer = Answer()
    answer.feed(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + body)
    assert answer.head() is not None
    with pytest.raises(ProtocolError, match=message):
        answer.body()


@pytest.mark.parametrize("framing, came, why", [
    (b"transfer-encoding: chunked\r\n\r\n6\r\nevent:", b"event:", "incomplete chunked read"),
    (b"content-length: 10\r\n\r\n{\"a\"", b'{"a"', "received 4 bytes, expected 10"),
])
def test_an_answer_cut_short_gives_what_came_then_says_why(framing, came, why):
    answer = Answer()
    answer.feed(b"HTTP/1.1 200 OK\r\n" + framing)
    answer.head()
    answer.feed(b"")
    assert answer.body() == came
    with pytest.raises(ProtocolError, match=f"^peer closed connection without sending complete message body: {why}$"):
        answer.body()


def test_closed_before_a_whole_head():
    for data in (b"", b"HTTP/1.1 200 OK\r\ncontent-"):
        answer = Answer()
        answer.feed(data)
        answer.feed(b"")
        with pytest.raises(ProtocolError, match="^server closed connection$"):
            answer.head()


def test_a_request_head():
    head = request_head(b"/v1/messages?beta=true", b"api.example:8443",
                        [("Content-Type", "application/json"), ("x-name", " caf\xe9 ")], 12)
    assert head == (b"POST /v1/messages?beta=true HTTP/1.1\r\nhost: api.example:8443\r\n"
                    b"Content-Type: application/json\r\nx-name: caf\xe9\r\ncontent-length: 12\r\n\r\n")


@pytest.mark.parametrize("name, value", [
    ("x-api-key", "sk-secret\r\nx-injected: 1"),
    ("x-api-key", "sk-secret\x00"),
    ("x-api-key", "sk-secret\u2028"),  # nothing latin-1 can write
    ("x api key", "sk-secret"),
    ("", "sk-secret"),
])
def test_a_header_http_does_not_allow_is_refused_by_name(name, value):
    with pytest.raises(ValueError) as refused:
        request_head(b"/", b"h", [(name, value)], 0)
    assert "sk-secret" not in str(refused.value)

"""A flow's one stream callable (addons/streams.py): each addon's stage in its place, for
every chunk and the end, whatever set the stream first."""

from __future__ import annotations

import asyncio
import json

from modelmux.addons import streams
from modelmux.addons.streams import Pipe
from modelmux.translate.meter import Meter, Reported
from modelmux.translate.openai_chat import ChatStream, Context

CHAT = [b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n',
        b'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n',
        b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],'
        b'"usage":{"prompt_tokens":9,"completion_tokens":2}}\n\n',
        b"data: [DONE]\n\n"]  # fmt: skip


class Seen:
    def __init__(self) -> None:
        self.pieces: list[list[bytes]] = []

    def passed(self, pieces: list[bytes]) -> None:
        self.pieces.append(list(pieces))


def test_true_passes_the_bytes_as_they_come_and_never_an_empty_piece():
    pipe = Pipe.of(True)
    pipe.watcher = seen = Seen()
    assert (pipe(b"abc"), pipe(b""), pipe.changes, pipe.ended) == ([b"abc"], [], False, True)
    assert seen.pieces == [[b"abc"], []]


def test_another_addons_callable_is_the_first_stage():
    said = iter([b"one", [b"two", b"", b"three"], b""])
    pipe = Pipe.of(lambda chunk: next(said))
    # Two pieces leave as one: mitmproxy would write each to the socket by itself.
    assert (pipe(b"x"), pipe(b"y"), pipe(b""), pipe.changes) == ([b"one"], [b"twothree"], [], True)
    assert Pipe.of(pipe) is pipe


def test_the_upstreams_chunks_are_kept_and_the_heartbeats_clock_set_only_when_asked():
    pipe = Pipe(ChatStream(Context(model="claude-sonnet-4-5", input_tokens=5)))
    assert pipe(CHAT[0]) and pipe.heard is None  # not timed: no heartbeat asked
    pipe.heard, pipe.raw = 0.0, []
    assert pipe(CHAT[1])
    assert pipe.heard > 0.0 and pipe.raw == [CHAT[1]]


def test_a_translated_streams_reported_meter_reads_what_the_scanning_meter_reads():
    stream = ChatStream(Context(model="claude-sonnet-4-5", input_tokens=5))
    pipe = Pipe(stream)
    pipe.watcher = reported = Reported(stream.writer, keep=True)
    out = [piece for chunk in [*CHAT, b""] for piece in pipe(chunk)]
    scanned = Meter()
    scanned.passed(out)
    assert reported.body() == b"".join(out)
    assert (reported.tokens(), reported.error_type) == (scanned.tokens(), None)
    assert reported.first_content is not None and scanned.first_content is not None


def test_before_message_delta_the_reported_tokens_are_message_starts():
    stream = ChatStream(Context(model="claude-sonnet-4-5", input_tokens=5))
    pipe = Pipe(stream)
    pipe.watcher = reported = Reported(stream.writer)
    out = pipe(CHAT[0]) + pipe(CHAT[1]) + pipe(b"")  # no finish: it broke off
    scanned = Meter()
    scanned.passed(out)
    assert reported.error_type == scanned.error_type == "api_error"
    assert reported.tokens() == scanned.tokens()
    assert reported.tokens().input_tokens == 5


ANTHROPIC = [b'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":3}}}\n\n',
             *(b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
               b'"delta":{"type":"text_delta","text":"%d"}}\n\n' % i for i in range(4))]  # fmt: skip


def _writing_pipe() -> tuple[Pipe, list[bytes]]:
    pipe = Pipe.of(True)
    pipe.watcher = Meter()
    written: list[bytes] = []
    pipe.write = lambda data: written.append(data) or True
    return pipe, written


def test_once_the_first_token_is_out_what_one_reads_chunks_give_leaves_in_one_write_after_it():
    async def run() -> None:
        pipe, written = _writing_pipe()
        # What comes before the first token waits for it, and leaves with it at once.
        assert [pipe(ANTHROPIC[0]), pipe(ANTHROPIC[1])] == [[], [ANTHROPIC[0] + ANTHROPIC[1]]]
        # The chunks of one read (mitmproxy calls the pipe for each without a loop turn between)...
        assert [pipe(ANTHROPIC[2]), pipe(ANTHROPIC[3])] == [[], []]
        assert written == []
        await asyncio.sleep(0)  # ...leave together once mitmproxy is done with the read
        assert written == [ANTHROPIC[2] + ANTHROPIC[3]]
        # A read that ends the answer: what waits goes before the end, in mitmproxy's own write.
        assert pipe(ANTHROPIC[4]) == []
        assert pipe(b"") == [ANTHROPIC[4]] and pipe.ended
        await asyncio.sleep(0)
        assert written == [ANTHROPIC[2] + ANTHROPIC[3]]  # nothing after the end

    asyncio.run(run())


def test_what_comes_before_the_first_token_waits_no_longer_than_its_read():
    async def run() -> None:
        pipe, written = _writing_pipe()
        assert pipe(ANTHROPIC[0]) == []  # message_start; the first token is in a later read
        await asyncio.sleep(0)
        assert written == [ANTHROPIC[0]]
        assert pipe(ANTHROPIC[1]) == [ANTHROPIC[1]]  # the first token, at once
        await asyncio.sleep(0)
        assert written == [ANTHROPIC[0]]

    asyncio.run(run())


def test_a_flush_writes_what_waits_at_once_and_nothing_after_the_end():
    async def run() -> None:
        pipe, written = _writing_pipe()
        pipe(ANTHROPIC[0]), pipe(ANTHROPIC[1]), pipe(ANTHROPIC[2])
        pipe.flush()  # the Heartbeat, before a ping or the error event
        assert written == [ANTHROPIC[2]]
        await asyncio.sleep(0)
        assert written == [ANTHROPIC[2]]
        pipe(b"")
        pipe.flush()
        assert written == [ANTHROPIC[2]]

    asyncio.run(run())


def test_without_a_writer_every_chunk_leaves_as_it_comes():
    pipe = Pipe.of(True)
    pipe.watcher = Meter()
    assert [pipe(event) for event in ANTHROPIC] == [[event] for event in ANTHROPIC]


class Raising:
    def __init__(self) -> None:
        self.calls = 0

    def feed(self, chunk: bytes) -> list[bytes]:
        self.calls += 1
        if self.calls == 2:
            raise KeyError("name")
        return [chunk]

    def close(self) -> list[bytes]:
        return [b"never"]


def test_a_stage_that_raises_gets_the_client_one_error_event_then_nothing(caplog):
    pipe = Pipe(Raising())
    assert pipe(ANTHROPIC[0]) == [ANTHROPIC[0]]
    [error] = pipe(ANTHROPIC[1])
    assert error.startswith(b"event: error\ndata: ")
    assert json.loads(error.split(b"data: ", 1)[1]) == {
        "type": "error", "error": {"type": "api_error", "message": streams.FAILED}}
    assert (pipe(ANTHROPIC[2]), pipe(b""), pipe.ended) == ([], [], True)
    assert "KeyError" in caplog.text


def test_after_a_stage_raised_the_heartbeat_writes_nothing_more():
    from modelmux import attempt
    from modelmux.addons.heartbeat import Beating

    pipe = Pipe(Raising())
    beating = Beating(flow=None, pipe=pipe, pulse=attempt.Pulse(10, 0.0))  # type: ignore[arg-type]
    pipe(ANTHROPIC[0])
    assert not beating.over()
    pipe(ANTHROPIC[1])  # raises inside: the client got its error event
    assert beating.over()

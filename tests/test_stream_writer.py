"""The stream writer: every legal sequence of calls is written as Anthropic's grammar
and specification say, byte for byte as format_event would write it; every illegal
call raises its own exception and writes nothing; and what it reports (content, first
delta, error, usage) is what the relay's and the Meter's scans of the same bytes find.
The content writer keeps the same grammar, and its blocks are what a client puts
together from the stream writer's events for the same calls."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from hypothesis import event as observe
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sse_checks import accumulated, conforms, events, stream_schema, validate

from modelmux.translate import messages
from modelmux.translate.assembly import Assembly
from modelmux.translate.meter import Meter, Reported, Tokens
from modelmux.translate.passthrough import AnthropicEvents
from modelmux.translate.sse import format_event
from modelmux.translate.stream_writer import (
    TEXT, THINKING, AfterEnd, BlockOpen, ContentWriter, ErrorEvent, IllegalEvent, NoBlock, NotStarted, StartedTwice,
    StreamWriter, WrongDelta,
)

MODEL = "claude-sonnet-4-5"
USAGE = messages.usage(120, 7, cache_read=30, cache_write=5)
COUNTS = {"input_tokens": 120, "output_tokens": 7, "cache_creation_input_tokens": 5, "cache_read_input_tokens": 30,
          "output_tokens_details": None, "server_tool_use": None}  # fmt: skip
# Any text but lone surrogates, which no stream (and no UTF-8) can carry.
TEXTS = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)

DELTAS = {  # the writer's delta call → (its delta type, field), and the blocks that take it
    "text": ("text_delta", "text", {"text"}),
    "thinking": ("thinking_delta", "thinking", {"thinking"}),
    "input_json": ("input_json_delta", "partial_json", {"tool_use"}),
    "signature": ("signature_delta", "signature", {"thinking"}),
}
OPENS: dict[str, tuple[Callable[[StreamWriter], None], dict]] = {  # a block → how it opens, what it starts as
    "text": (lambda w: w.open(TEXT), messages.text_block("")),
    "thinking": (lambda w: w.open(THINKING), messages.thinking_block()),
    "redacted_thinking": (lambda w: w.open_redacted_thinking("EmwKAhgB"), {"type": "redacted_thinking", "data": "EmwKAhgB"}),
    "tool_use": (lambda w: w.open_tool_use("toolu_01", "Bash"), messages.tool_use_block("toolu_01", "Bash", {})),
}
ERRORS = {"api_error": "APIError", "overloaded_error": "OverloadedError", "rate_limit_error": "RateLimitError"}
CALLS: dict[str, Callable[[StreamWriter], None]] = {  # every call, to try where it is illegal
    "start": lambda w: w.start(MODEL, 1), "ping": StreamWriter.ping, "close": StreamWriter.close,
    "end": lambda w: w.end("end_turn", None, USAGE), "fail": lambda w: w.fail("api_error", "x"),
    **{f"open {kind}": opens for kind, (opens, _) in OPENS.items()},
    **{call: lambda w, call=call: getattr(w, call)("piece") for call in DELTAS},
}


def started() -> StreamWriter:
    writer = StreamWriter()
    writer.start(MODEL, 120)
    return writer


def written(writer: StreamWriter) -> list[dict]:
    return events([writer.data_to_send()])


# -- the byte templates ---------------------------------------------------------------------


@pytest.mark.parametrize("call", DELTAS)
@pytest.mark.parametrize("piece", ["plain", 'quo"te \\ back', "new\nline\ttab\x00\x1f", "ünï €😀 \u2028"])
def test_a_delta_is_byte_for_byte_what_format_event_writes(call, piece):
    """The templates skip building a dict; what they write is the same bytes."""
    delta, field, kinds = DELTAS[call]
    writer = started()
    OPENS[next(iter(kinds))][0](writer)
    writer.data_to_send()
    getattr(writer, call)(piece)
    event = {"type": "content_block_delta", "index": 0, "delta": {"type": delta, field: piece}}
    assert writer.data_to_send() == format_event("content_block_delta", event)
    writer.close()
    assert writer.data_to_send() == format_event("content_block_stop", {"type": "content_block_stop", "index": 0})


def test_a_whole_stream_is_the_events_messages_writes():
    writer = started()
    writer.ping()
    writer.open(TEXT)
    writer.text("Hi")
    writer.close()
    writer.open_tool_use("toolu_01", "Bash")
    writer.input_json('{"a": 1}')
    writer.close()
    writer.end("tool_use", None, USAGE)
    sequence = events([writer.data_to_send()])
    validate(sequence)
    assert [e["type"] for e in sequence] == [
        "message_start", "ping", "content_block_start", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop",
    ]  # fmt: skip
    assert sequence[-2] == {"type": "message_delta", "usage": COUNTS, "delta": {
        "stop_reason": "tool_use", "stop_sequence": None, "stop_details": None, "container": None}}
    assert accumulated(sequence)["content"] == [
        {"type": "text", "text": "Hi", "citations": None},
        {"type": "tool_use", "id": "toolu_01", "name": "Bash", "input": {"a": 1}, "caller": {"type": "direct"}},
    ]


# -- illegal transitions ------------------------------------------------------------------


def _open_text(w: StreamWriter) -> None:
    w.open(TEXT)


def _signed(w: StreamWriter) -> None:
    w.open(THINKING)
    w.signature("sig")


def _ended(w: StreamWriter) -> None:
    w.end("end_turn", None, USAGE)


def _failed(w: StreamWriter) -> None:
    w.open(TEXT)
    w.fail("overloaded_error", "busy")


ILLEGAL = [
    pytest.param(None, lambda w: w.ping(), NotStarted, id="ping-before-start"),
    pytest.param(None, lambda w: w.open(TEXT), NotStarted, id="block-before-start"),
    pytest.param(None, lambda w: w.text("a"), NotStarted, id="delta-before-start"),
    pytest.param(None, lambda w: w.close(), NotStarted, id="stop-before-start"),
    pytest.param(None, lambda w: w.end("end_turn", None, USAGE), NotStarted, id="end-before-start"),
    pytest.param(None, lambda w: w.fail("api_error", "x"), NotStarted, id="error-before-start"),
    pytest.param(lambda w: None, lambda w: w.start(MODEL, 1), StartedTwice, id="start-twice"),
    pytest.param(_open_text, lambda w: w.open(THINKING), BlockOpen, id="two-open-blocks"),
    pytest.param(_open_text, lambda w: w.end("end_turn", None, USAGE), BlockOpen, id="end-with-a-block-open"),
    pytest.param(lambda w: None, lambda w: w.text("a"), NoBlock, id="delta-without-a-block"),
    pytest.param(lambda w: None, lambda w: w.text(""), NoBlock, id="empty-delta-without-a-block"),
    pytest.param(lambda w: None, lambda w: w.close(), NoBlock, id="stop-without-a-block"),
    pytest.param(_open_text, lambda w: w.thinking("a"), WrongDelta, id="thinking-on-text"),
    pytest.param(_open_text, lambda w: w.input_json("{"), WrongDelta, id="json-on-text"),
    pytest.param(_open_text, lambda w: w.signature("s"), WrongDelta, id="signature-on-text"),
    pytest.param(lambda w: w.open(THINKING), lambda w: w.text("a"), WrongDelta, id="text-on-thinking"),
    pytest.param(lambda w: w.open_tool_use("t", "n"), lambda w: w.text("a"), WrongDelta, id="text-on-tool-use"),
    pytest.param(lambda w: w.open_redacted_thinking("d"), lambda w: w.thinking("a"), WrongDelta, id="redacted-takes-none"),
    pytest.param(_signed, lambda w: w.thinking("a"), WrongDelta, id="thinking-after-signature"),
    pytest.param(_signed, lambda w: w.signature("again"), WrongDelta, id="second-signature"),
    pytest.param(_ended, lambda w: w.ping(), AfterEnd, id="ping-after-stop"),
    pytest.param(_ended, lambda w: w.open(TEXT), AfterEnd, id="block-after-stop"),
    pytest.param(_ended, lambda w: w.end("end_turn", None, USAGE), AfterEnd, id="end-twice"),
    pytest.param(_ended, lambda w: w.fail("api_error", "x"), AfterEnd, id="error-after-stop"),
    pytest.param(_ended, lambda w: w.start(MODEL, 1), AfterEnd, id="start-after-stop"),
    pytest.param(_failed, lambda w: w.text("a"), AfterEnd, id="delta-after-error"),
    pytest.param(_failed, lambda w: w.close(), AfterEnd, id="stop-after-error"),
    pytest.param(_failed, lambda w: w.fail("api_error", "x"), AfterEnd, id="error-twice"),
]


@pytest.mark.parametrize("writer_type", [StreamWriter, ContentWriter])
@pytest.mark.parametrize("before, call, exception", ILLEGAL)
def test_an_illegal_transition_raises_its_exception_and_writes_nothing(before, call, exception, writer_type):
    writer = writer_type()
    if before is not None:
        writer.start(MODEL, 1)
        before(writer)
    state = dict(vars(writer))
    writer.data_to_send()
    with pytest.raises(exception) as raised:
        call(writer)
    assert isinstance(raised.value, IllegalEvent) and str(raised.value)
    assert writer.data_to_send() == b""
    assert {k: v for k, v in vars(writer).items() if k != "_out"} == {k: v for k, v in state.items() if k != "_out"}


# -- what it reports ------------------------------------------------------------------------


def test_it_reports_content_the_first_delta_and_the_usage():
    writer = started()
    writer.ping()
    assert (writer.content, writer.deltas) == (False, 0)  # only message_start and a ping: nothing to commit to
    writer.open(TEXT)
    assert (writer.content, writer.deltas) == (True, 0)
    writer.text("")
    assert writer.deltas == 0  # an empty piece is not written
    writer.text("Hi")
    writer.close()
    assert (writer.deltas, writer.usage, writer.stop_reason) == (1, None, None)
    writer.end("stop_sequence", "###", USAGE)
    assert (writer.stop_reason, writer.stop_sequence, writer.usage, writer.error) == ("stop_sequence", "###", COUNTS, None)
    assert writer.ended


def test_an_error_before_content_is_reported_as_such():
    writer = started()
    writer.fail("overloaded_error", "Overloaded")
    assert (writer.content, writer.error, writer.ended) == (False, ErrorEvent("overloaded_error", "Overloaded"), True)
    assert written(writer)[-1] == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


def test_an_error_may_end_an_open_block():
    writer = started()
    writer.open_tool_use("toolu_01", "Bash")
    writer.input_json('{"a"')
    writer.fail("api_error", "broke off")
    assert (writer.content, writer.deltas, writer.kind, writer.error) == (True, 1, None, ErrorEvent("api_error", "broke off"))


def test_open_starts_only_the_blocks_that_start_empty():
    with pytest.raises(ValueError):
        started().open("tool_use")


def test_a_message_without_content_is_still_content():
    """message_delta is the relay's first real event too: an empty answer commits."""
    writer = started()
    assert not writer.content
    writer.end("end_turn", None, USAGE)
    assert writer.content and writer.deltas == 0


# -- the content writer ------------------------------------------------------------------------

JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | TEXTS,
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXTS, inner, max_size=3),
                           max_leaves=8)  # fmt: skip


@st.composite
def blocks(draw) -> list[tuple[str, list[str], str | None]]:
    """Blocks to write: (kind, its deltas' pieces, a thinking block's signature); a tool
    call's pieces are its input's JSON, cut anywhere."""
    found = []
    for kind in draw(st.lists(st.sampled_from(sorted(OPENS)), max_size=5)):
        signature = None
        if kind == "tool_use":
            text = json.dumps(draw(st.dictionaries(TEXTS, JSON_VALUES, max_size=3)), ensure_ascii=False)
            cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=4)))
            pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        elif kind == "redacted_thinking":
            pieces = []
        else:
            pieces = draw(st.lists(TEXTS, max_size=4))
            signature = draw(st.none() | TEXTS) if kind == "thinking" else None
        found.append((kind, pieces, signature))
    return found


def write(writer: StreamWriter, content: list[tuple[str, list[str], str | None]]) -> None:
    writer.start(MODEL, 120)
    for kind, pieces, signature in content:
        OPENS[kind][0](writer)
        for piece in pieces:
            {"text": writer.text, "thinking": writer.thinking, "tool_use": writer.input_json}[kind](piece)
        if signature is not None:
            writer.signature(signature)
        writer.close()


@settings(max_examples=300, deadline=None)
@given(blocks())
def test_the_content_writer_holds_what_a_client_puts_together_from_the_events(content):
    events_written, values = StreamWriter(), ContentWriter()
    write(events_written, content)
    write(values, content)
    assembly = Assembly()
    assembly.feed(events_written.data_to_send())
    assert assembly.error is None
    assert values.written == assembly.message["content"]
    assert (values.blocks, values.deltas, values.content) == (events_written.blocks, events_written.deltas, events_written.content)
    assert values.data_to_send() == b""  # no event


def test_a_tool_calls_input_must_be_a_json_object():
    writer = ContentWriter()
    writer.start(MODEL, 1)
    writer.open_tool_use("toolu_01", "Bash")
    writer.input_json('["a"]')
    with pytest.raises(WrongDelta, match="no JSON object"):
        writer.close()


# -- every legal sequence ----------------------------------------------------------------------


class Writing(RuleBasedStateMachine):
    """Legal sequences of calls, as long as `length` says before the stream may end, and
    at every point any call that is illegal there. A model of the grammar says which are
    which: the legal ones must be written, the illegal ones raise the model's exception
    and write nothing. The written bytes are held to the grammar, the specification and
    format_event, and the reported values to the model and to the scans the relay and
    the Meter make of the same bytes."""

    def __init__(self) -> None:
        super().__init__()
        self.writer = StreamWriter()
        self.output: list[bytes] = []
        self.expected: list[dict] = []
        self.started = self.ended = self.signed = False
        self.kind: str | None = None
        self.blocks = self.deltas = self.steps = self.length = 0
        self.content = False
        self.error: ErrorEvent | None = None
        self.usage: dict | None = None

    # -- the model ------------------------------------------------------------------------

    def refused(self, call: str) -> type[IllegalEvent] | None:
        """The exception `call` raises now; None when it is legal."""
        if call == "start":
            return (AfterEnd if self.ended else StartedTwice) if self.started else None
        if not self.started:
            return NotStarted
        if self.ended:
            return AfterEnd
        if call.startswith("open ") or call == "end":
            return BlockOpen if self.kind else None
        if call == "close":
            return NoBlock if self.kind is None else None
        if call in DELTAS:
            if self.kind is None:
                return NoBlock
            return WrongDelta if self.kind not in DELTAS[call][2] or (self.kind == "thinking" and self.signed) else None
        return None  # ping, fail

    def write(self, call: Callable[[StreamWriter], None]) -> None:
        call(self.writer)
        self.output.append(self.writer.data_to_send())
        self.steps += 1

    # -- legal calls -----------------------------------------------------------------------

    @initialize(started=st.booleans(), length=st.integers(0, 25))
    def begin(self, started: bool, length: int) -> None:
        self.length = length
        if started:
            self.start()

    @precondition(lambda self: not self.started)
    @rule()
    def start(self) -> None:
        self.write(lambda w: w.start(MODEL, 120))
        self.started = True
        self.expected.append({"type": "message_start"})

    @precondition(lambda self: self.refused("ping") is None)
    @rule()
    def ping(self) -> None:
        self.write(StreamWriter.ping)
        self.expected.append({"type": "ping"})

    @precondition(lambda self: self.refused("open text") is None)
    @rule(kind=st.sampled_from(sorted(OPENS)))
    def open(self, kind: str) -> None:
        opens, block = OPENS[kind]
        self.write(opens)
        self.expected.append({"type": "content_block_start", "index": self.blocks, "content_block": block})
        self.kind, self.signed, self.content = kind, False, True
        self.blocks += 1

    @precondition(lambda self: any(self.refused(call) is None for call in DELTAS))
    @rule(data=st.data(), piece=TEXTS)
    def delta(self, data: st.DataObject, piece: str) -> None:
        call = data.draw(st.sampled_from([call for call in sorted(DELTAS) if self.refused(call) is None]))
        self.write(lambda w: getattr(w, call)(piece))
        if piece:  # an empty piece writes nothing
            delta, field, _ = DELTAS[call]
            self.expected.append({"type": "content_block_delta", "index": self.blocks - 1, "delta": {"type": delta, field: piece}})
            self.deltas += 1
            self.signed = self.signed or call == "signature"

    @precondition(lambda self: self.refused("close") is None)
    @rule()
    def close(self) -> None:
        self.write(StreamWriter.close)
        self.expected.append({"type": "content_block_stop", "index": self.blocks - 1})
        self.kind = None

    @precondition(lambda self: self.refused("end") is None and self.steps >= self.length)
    @rule(reason=st.sampled_from(["end_turn", "max_tokens", "tool_use", "stop_sequence"]))
    def end(self, reason: str) -> None:
        sequence = "###" if reason == "stop_sequence" else None
        self.write(lambda w: w.end(reason, sequence, USAGE))
        self.expected += [{"type": "message_delta", "usage": COUNTS, "delta": {
            "stop_reason": reason, "stop_sequence": sequence, "stop_details": None, "container": None}},
            {"type": "message_stop"}]
        self.ended = self.content = True
        self.usage = COUNTS

    @precondition(lambda self: self.refused("fail") is None and self.steps >= self.length)
    @rule(error_type=st.sampled_from(sorted(ERRORS)), message=TEXTS)
    def fail(self, error_type: str, message: str) -> None:
        self.write(lambda w: w.fail(error_type, message))
        self.expected.append({"type": "error", "error": {"type": error_type, "message": message}})
        self.ended, self.kind, self.error = True, None, ErrorEvent(error_type, message)

    # -- illegal calls ---------------------------------------------------------------------

    @rule(data=st.data())
    def illegal(self, data: st.DataObject) -> None:
        refused = {call: exception for call in CALLS if (exception := self.refused(call)) is not None}
        if not refused:
            return
        call = data.draw(st.sampled_from(sorted(refused)))
        with pytest.raises(refused[call]):
            CALLS[call](self.writer)
        assert self.writer.data_to_send() == b""

    # -- what was written ---------------------------------------------------------------------

    @invariant()
    def reports_what_it_wrote(self) -> None:
        writer = self.writer
        assert (writer.started, writer.ended, writer.kind, writer.blocks) == (self.started, self.ended, self.kind, self.blocks)
        assert (writer.index, writer.signed and writer.kind is not None) == (
            self.blocks - 1 if self.kind else None, self.signed and self.kind is not None)
        assert (writer.content, writer.deltas, writer.error, writer.usage) == (self.content, self.deltas, self.error, self.usage)
        data = b"".join(self.output)
        # An Anthropic upstream's stream is read for the same facts (the relay commits at
        # its first real event), and the Meter times the first content_block_delta: both
        # are what the writer says.
        reader = AnthropicEvents()
        assert b"".join(reader.feed(data) + reader.close()) == data
        read_error = (reader.error.error_type, reader.error.message) if reader.error else None
        assert (reader.content, read_error) == (writer.content, tuple(writer.error) if writer.error else None)
        if writer.usage is not None:
            assert {k: v for k, v in writer.usage.items() if v is not None} == reader.usage
        meter = Meter()
        meter.feed(data)
        assert (meter.first_content is not None) == (writer.deltas > 0)
        assert meter.error_type == (writer.error.type if writer.error else None)
        if writer.usage is not None:
            assert meter.tokens() == Tokens(input_tokens=120, cached_tokens=30, cache_write_tokens=5, output_tokens=7)
        # The Dashboard's meter of a translated stream reads the writer, not the bytes: the same readings.
        reported = Reported(writer, keep=True)
        reported.passed([data])
        assert (reported.first_content is not None, reported.error_type) == (meter.first_content is not None, meter.error_type)
        assert reported.body() == data
        if writer.started:
            assert reported.tokens() == meter.tokens()

    def teardown(self) -> None:
        observe(f"ended: {'error' if self.error else 'message_stop' if self.ended else 'no'}, blocks: {min(self.blocks, 3)}")
        data = b"".join(self.output)
        sequence = events([data])
        # Every event is byte for byte what format_event writes for what it holds.
        assert b"".join(format_event(e["type"], e) for e in sequence) == data
        plain = [{"type": "message_start"} if e["type"] == "message_start" else e for e in sequence]
        assert plain == self.expected
        for event in sequence:
            if event["type"] == "error":  # an error response's `error` (the stream's has no request_id)
                conforms(event["error"], ERRORS[event["error"]["type"]])
            elif event["type"] != "ping":
                conforms(event, stream_schema(event["type"]))
        if self.ended and self.error is None:
            validate(sequence)


Writing.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
TestAnySequenceOfCalls = Writing.TestCase

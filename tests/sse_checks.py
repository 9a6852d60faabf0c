"""Checks for Anthropic event streams made by a translator: parse them, hold them to
Anthropic's event grammar and its OpenAPI specification, and rebuild the message with
the anthropic SDK's own accumulator (what a real client would see)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import llm_comply
from anthropic.lib.streaming._messages import accumulate_event
from llm_comply.schema import SpecLoader

from modelmux.translate.sse import EventSplitter, parse_event

DELTAS = {"text": {"text_delta"}, "thinking": {"thinking_delta", "signature_delta"}, "tool_use": {"input_json_delta"}}


class Translator(Protocol):
    def feed(self, chunk: bytes) -> list[bytes]: ...
    def close(self) -> list[bytes]: ...


def feed(stream: Translator, data: bytes, sizes: list[int] | None = None) -> list[bytes]:
    """Feed `data` cut at `sizes` (cycled), then close; no write may be empty."""
    out: list[bytes] = []
    position, i = 0, 0
    while position < len(data):
        size = sizes[i % len(sizes)] if sizes else len(data)
        produced = stream.feed(data[position : position + size])
        assert b"" not in produced
        out += produced
        position += size
        i += 1
    return out + stream.close()


def events(output: list[bytes]) -> list[dict]:
    splitter = EventSplitter()
    parsed = []
    for raw in splitter.feed(b"".join(output)):
        event = parse_event(raw)
        data = event.json()
        assert data["type"] == event.name
        parsed.append(data)
    assert splitter.rest() == b""
    return parsed


@functools.cache
def specification() -> SpecLoader:
    """Anthropic's OpenAPI specification, as llm-comply bundles it."""
    return SpecLoader(str(Path(llm_comply.__file__).parent / "specs" / "anthropic.json"))


def conforms(data: dict, schema: str) -> None:
    """`data` is what the specification's `schema` says (every required field there,
    nullable ones included, each of its type)."""
    assert specification().validate(data, schema) == [], data


def stream_schema(kind: str) -> str:
    """The specification's schema for a stream event of type `kind`."""
    mapping = specification().get_schema("MessageStreamEvent")["discriminator"]["mapping"]  # type: ignore[index]
    return mapping[kind].rpartition("/")[2]


def validate(sequence: list[dict]) -> None:
    """Anthropic's stream grammar: one message_start, blocks opened, filled and closed in
    order with matching delta types (a thinking block's signature last), no empty
    deltas, message_delta, then message_stop; every event but pings (which the
    specification leaves out) as the specification says."""
    for event in sequence:
        if event["type"] != "ping":
            conforms(event, stream_schema(event["type"]))
    assert sequence[0]["type"] == "message_start"
    open_block, next_index, signed = None, 0, False
    for event in sequence[1:-2]:
        kind = event["type"]
        if kind == "ping":
            continue
        if kind == "content_block_start":
            assert open_block is None and event["index"] == next_index
            open_block, next_index, signed = event["content_block"]["type"], next_index + 1, False
        elif kind == "content_block_delta":
            assert open_block is not None and event["index"] == next_index - 1
            assert event["delta"]["type"] in DELTAS[open_block] and not signed
            signed = event["delta"]["type"] == "signature_delta"
            value = next(v for k, v in event["delta"].items() if k != "type")
            assert value != ""
        else:
            assert kind == "content_block_stop" and event["index"] == next_index - 1
            open_block = None
    assert open_block is None
    assert [e["type"] for e in sequence[-2:]] == ["message_delta", "message_stop"]


def accumulated(sequence: list[dict]) -> dict[str, Any]:
    snapshot = None
    buffers: dict[int, bytes] = {}
    for event in sequence:
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=buffers)
    assert snapshot is not None
    # The fields the stream set, nulls included: what a client got, not the SDK's defaults.
    return snapshot.model_dump(include={"content", "stop_reason", "usage", "model"}, exclude_unset=True)


def made_id(event: dict) -> bool:
    """Whether `event` starts a tool_use block whose id modelmux made (the upstream gave none)."""
    block = event.get("content_block") if event["type"] == "content_block_start" else None
    return isinstance(block, dict) and block["type"] == "tool_use" and block["id"].startswith("toolu_")


def at_every_cut(make: Callable[[], Translator], data: bytes) -> list[dict]:
    """The events a fresh translator writes for `data` fed whole, checked to be the same
    (message ids and the tool-use ids modelmux makes aside) wherever `data` is cut in two."""
    def plain(sequence: list[dict]) -> list[dict]:
        return [{**e, "message": {**e["message"], "id": "msg"}} if e["type"] == "message_start"
                else {**e, "content_block": {**e["content_block"], "id": "toolu_ID"}} if made_id(e) else e
                for e in sequence]

    whole = plain(events(feed(make(), data)))
    for cut in range(1, len(data)):
        assert plain(events(feed(make(), data, [cut, len(data)]))) == whole, cut
    return whole

"""What counts as a correct answer, cheaply on every request and fully once per target.

The timing loops only check what costs next to nothing (the status, the number of
deltas, that a stream ended with message_stop). `expect` goes further, once per
target and mode before any timing and on the in-process transforms' output: the
answer, parsed whole, must be the upstream's text as a complete Anthropic message,
so a translation that loses or reorders text, breaks the stream's grammar or drops
the usage fails the run instead of producing fast-looking numbers.
"""

from __future__ import annotations

import json
import re
from typing import Any

from bench import upstreams
from bench.client import STOP_EVENT, Response
from bench.targets import Target

# One letter per Anthropic stream event, and the order a text answer's may come in
# (pings anywhere are dropped first).
LETTERS = {"message_start": "S", "content_block_start": "b", "content_block_delta": "d",
           "content_block_stop": "e", "message_delta": "D", "message_stop": "E"}  # fmt: skip
GRAMMAR = re.compile("S(bd*e)*DE")
_EVENT_END = re.compile(rb"\r\n\r\n|\n\n")


class Failed(Exception):
    pass


def check(target: Target, response: Response, stream: bool, events: int) -> None:
    """Raises Failed unless this is the whole answer (which also proves the bench's controls
    reached the upstream)."""
    if response.status != 200:
        raise Failed(f"{target.key}: HTTP {response.status}: {response.body[:300]!r}")
    if stream and (response.deltas() != events or STOP_EVENT not in response.body[-300:]):
        raise Failed(f"{target.key}: got {response.deltas()} of {events} deltas; ends {response.body[-120:]!r}")
    if target.restores_model and target.model.encode() not in response.body[:600]:
        raise Failed(f"{target.key}: the answer does not name {target.model}: {response.body[:300]!r}")


def expect(where: str, body: bytes, stream: bool, events: int, model: str | None) -> None:
    """Raises Failed unless `body` is the upstream's `events`-delta answer as a complete
    Anthropic message (named `model`, when given)."""
    message = _assemble(where, body) if stream else json.loads(body)
    text = upstreams.answer_text(events)
    content = [(block.get("type"), block.get("text")) for block in message.get("content") or []]
    usage = message.get("usage") or {}
    wrong = [
        what for what, ok in (
            (f"content {content!r}, not one text block {text!r}", content == [("text", text)]),
            (f"stop_reason {message.get('stop_reason')!r}", message.get("stop_reason") == "end_turn"),
            (f"usage {usage!r}", usage.get("input_tokens") == upstreams.INPUT_TOKENS
             and usage.get("output_tokens") == events * 3),
            (f"model {message.get('model')!r}, not {model!r}", model is None or message.get("model") == model),
        ) if not ok
    ]  # fmt: skip
    if wrong:
        raise Failed(f"{where}, {'stream' if stream else 'JSON'}: the answer is wrong: {'; '.join(wrong)}")


def _assemble(where: str, body: bytes) -> dict[str, Any]:
    """The message an Anthropic stream builds, after checking its grammar."""
    events = [e for e in _events(where, body) if e.get("type") != "ping"]
    order = "".join(LETTERS.get(e.get("type", ""), "?") for e in events)
    if not GRAMMAR.fullmatch(order):
        legend = ", ".join(f"{letter} {kind}" for kind, letter in LETTERS.items())
        others = [e for e in events if e.get("type") not in LETTERS][:2]
        raise Failed(f"{where}: the stream's events are out of order: {re.sub(r'd{3,}', lambda m: f'd×{len(m[0])}', order)} "
                     f"({legend}, ? other: {others!r})")  # fmt: skip
    message = dict(events[0]["message"], content=[])
    for event in events[1:]:
        kind = event["type"]
        if kind == "content_block_start":
            if event.get("index") != len(message["content"]):
                raise Failed(f"{where}: block {event.get('index')} started as block {len(message['content'])}")
            message["content"].append(dict(event["content_block"]))
        elif kind == "content_block_delta":
            block, delta = message["content"][-1], event["delta"]
            if event.get("index") != len(message["content"]) - 1 or delta.get("type") != "text_delta":
                raise Failed(f"{where}: a delta for block {event.get('index')} of another kind: {event!r}")
            block["text"] = block.get("text", "") + delta["text"]
        elif kind == "message_delta":
            message.update(event.get("delta") or {})
            message["usage"] = {**(message.get("usage") or {}), **(event.get("usage") or {})}
    return message


def _events(where: str, body: bytes) -> list[dict[str, Any]]:
    """The events' data, checking that each `event:` name matches its data's type."""
    out = []
    for raw in _EVENT_END.split(body):
        name, data = None, []
        for line in raw.decode().splitlines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        if not data:
            continue
        event = json.loads("\n".join(data))
        if name is not None and name != event.get("type"):
            raise Failed(f"{where}: event {name!r} carries data of type {event.get('type')!r}")
        out.append(event)
    return out

"""What one upstream answer shows, read from its own events rather than from the
translation the client gets: the translation hides what `--deep` asks about (which
field held the reasoning, whether usage came at all, the upstream's own tool-call ids).
A streamed answer is read event by event; a whole JSON answer (a server that ignored
`stream`) as one event. Pure.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from modelmux.translate.openai_chat.response import REASONING_FIELDS
from modelmux.translate.sse import EventSplitter, parse_event
from modelmux.translate.tool_names import VALID_ID

THINK_TAG = "<think>"  # reasoning some servers leave in the text (no reasoning parser)
Event = dict[str, Any]


@dataclass
class Call:
    id: str | None  # None: the upstream gave the call no id
    name: str


@dataclass
class Reading:
    usage: bool = False  # the answer reported its token usage
    reasoning: list[str] = field(default_factory=list)  # where reasoning came, as the upstream named it
    reasoning_tokens: int = 0  # reasoning the usage counts (shown or not)
    thought: str = ""  # the reasoning text shown
    calls: list[Call] = field(default_factory=list)
    text: str = ""
    error: str | None = None  # an error inside an answer that began as a success

    @property
    def reasoned(self) -> bool:
        return bool(self.reasoning) or self.reasoning_tokens > 0

    def saw(self, where: str, text: str = "") -> None:
        if where not in self.reasoning:
            self.reasoning.append(where)
        self.thought += text


def read(protocol: str, body: str) -> Reading:
    reading = Reading()
    events = _events(body)
    if events is None:
        reading.error = f"not JSON and not an event stream: {body[:80]!r}"
        return reading
    READERS[protocol](events, reading)
    if THINK_TAG in reading.text:
        reading.saw(f"{THINK_TAG} in the text", reading.text.partition(THINK_TAG)[2].partition("</think>")[0])
    return reading


def _events(body: str) -> list[Event] | None:
    """The answer's JSON events; None when it is neither JSON nor an event stream."""
    if body.lstrip().startswith(("data:", "event:", ":")):
        splitter = EventSplitter()
        raws = splitter.feed(body.encode()) + [splitter.rest() + b"\n\n"]
        found = []
        for raw in raws:
            data = parse_event(raw).data.strip()
            if not data or data == "[DONE]":
                continue
            try:
                found.append(json.loads(data))
            except ValueError:
                return None
        return [e for e in found if isinstance(e, dict)]
    try:
        whole = json.loads(body)
    except ValueError:
        return None
    items = whole if isinstance(whole, list) else [whole]  # Gemini's streams without alt=sse are an array
    return [e for e in items if isinstance(e, dict)]


def _chat(events: Iterable[Event], reading: Reading) -> None:
    """Chunks (`delta`) or a whole completion (`message`). A streamed call's id and name
    come with its first fragment, which its `index` ties to the rest."""
    calls: dict[int, Call] = {}
    for event in events:
        if isinstance(error := event.get("error"), dict):
            reading.error = str(error.get("message") or error)
        if isinstance(usage := event.get("usage"), dict):
            reading.usage = True
            reading.reasoning_tokens += _int((usage.get("completion_tokens_details") or {}).get("reasoning_tokens"))
        for choice in event.get("choices") or ():
            part = (choice.get("delta") or choice.get("message") or {}) if isinstance(choice, dict) else {}
            for name in REASONING_FIELDS:
                if isinstance(part.get(name), str) and part[name]:
                    reading.saw(name, part[name])
            if isinstance(part.get("content"), str):
                reading.text += part["content"]
            for at, fragment in enumerate(part.get("tool_calls") or ()):
                call = calls.setdefault(_int(fragment.get("index", at)), Call(None, ""))
                call.id = call.id or fragment.get("id") or None
                call.name = call.name or (fragment.get("function") or {}).get("name") or ""
    reading.calls = [calls[index] for index in sorted(calls)]


def _responses(events: Iterable[Event], reading: Reading) -> None:
    """Streamed events, each finished item in `response.output_item.done` and the usage in
    the terminal event's response; or a whole `response` object."""
    items: list[Event] = []
    final: Event | None = None
    for event in events:
        kind = event.get("type")
        if kind == "response.output_item.done" and isinstance(event.get("item"), dict):
            items.append(event["item"])
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            final = event.get("response") if isinstance(event.get("response"), dict) else None
        elif kind == "error":
            reading.error = str(event.get("message") or event)
        elif event.get("object") == "response":
            final = event
    if final is not None:
        if isinstance(error := final.get("error"), dict):
            reading.error = str(error.get("message") or error)
        if isinstance(usage := final.get("usage"), dict):
            reading.usage = True
            reading.reasoning_tokens += _int((usage.get("output_tokens_details") or {}).get("reasoning_tokens"))
        items = items or [i for i in final.get("output") or () if isinstance(i, dict)]
    for item in items:
        kind = item.get("type")
        if kind == "reasoning":
            if summary := "".join(s.get("text") or "" for s in item.get("summary") or () if isinstance(s, dict)):
                reading.saw("reasoning summaries", summary)
            if item.get("encrypted_content"):
                reading.saw("encrypted reasoning")
        elif kind == "function_call":
            reading.calls.append(Call(item.get("call_id") or None, str(item.get("name") or "")))
        elif kind == "message":
            reading.text += "".join(p.get("text", "") for p in item.get("content") or () if isinstance(p, dict))


def _gemini(events: Iterable[Event], reading: Reading) -> None:
    for event in events:
        if isinstance(error := event.get("error"), dict):
            reading.error = str(error.get("message") or error)
        if isinstance(usage := event.get("usageMetadata"), dict) and "candidatesTokenCount" in usage:
            reading.usage = True
            reading.reasoning_tokens = max(reading.reasoning_tokens, _int(usage.get("thoughtsTokenCount")))
        for candidate in event.get("candidates") or ():
            for part in ((candidate.get("content") or {}).get("parts") or ()) if isinstance(candidate, dict) else ():
                if part.get("thought"):
                    reading.saw("thought parts", str(part.get("text") or ""))
                elif isinstance(call := part.get("functionCall"), dict):
                    reading.calls.append(Call(call.get("id") or None, str(call.get("name") or "")))
                elif isinstance(part.get("text"), str):
                    reading.text += part["text"]


def _anthropic(events: Iterable[Event], reading: Reading) -> None:
    """Anthropic's events, or a whole message (an Anthropic-compatible vendor's)."""
    for event in events:
        kind = event.get("type")
        message = event.get("message") if kind == "message_start" else event if kind == "message" else {}
        blocks = [b for b in (message or {}).get("content") or () if isinstance(b, dict)]
        if kind == "content_block_start" and isinstance(event.get("content_block"), dict):
            blocks = [event["content_block"]]
        for block in blocks:
            if block.get("type") in ("thinking", "redacted_thinking"):
                reading.saw("thinking blocks", str(block.get("thinking") or ""))
            elif block.get("type") == "tool_use":
                reading.calls.append(Call(block.get("id") or None, str(block.get("name") or "")))
            elif block.get("type") == "text":
                reading.text += block.get("text") or ""
        # The answer's usage comes last, in message_delta (message_start's counts the prompt).
        if kind in ("message", "message_delta") and isinstance(event.get("usage"), dict):
            reading.usage = reading.usage or "output_tokens" in event["usage"]
        delta = event.get("delta") or {}
        if kind == "content_block_delta" and delta.get("type") == "thinking_delta":
            reading.saw("thinking blocks", str(delta.get("thinking") or ""))
        elif kind == "content_block_delta" and delta.get("type") == "text_delta":
            reading.text += delta.get("text") or ""
        elif kind == "error":
            reading.error = str((event.get("error") or {}).get("message") or event)


def ids(calls: list[Call]) -> tuple[str, str]:
    """What the calls' ids are: present, unique, in the form Anthropic's clients accept."""
    ids = [c.id for c in calls if c.id]
    if not calls:
        return "no calls to read", "-"
    if not ids:
        return "absent (modelmux makes toolu_ ids)", "no id on any call"
    parts = ["present" if len(ids) == len(calls) else f"{len(calls) - len(ids)} of {len(calls)} missing",
             "unique" if len(set(ids)) == len(ids) else "NOT unique",
             "Anthropic's form" if all(VALID_ID.match(i) for i in ids) else
             "not Anthropic's form (modelmux encodes them)"]  # fmt: skip
    return ", ".join(parts), f"e.g. {ids[0][:48]}"


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


READERS: dict[str, Callable[[Iterable[Event], Reading], None]] = {
    "openai-chat": _chat,
    "openai-responses": _responses,
    "gemini": _gemini,
    "anthropic": _anthropic,
}

"""An Anthropic event stream put together into the whole message it describes. Pure.

For an upstream that only streams (the Codex backend) while the client asked for one
JSON answer: the translated stream is fed in, the message comes out, as the SDKs'
own accumulators build it.
"""

from __future__ import annotations

import json
from typing import Any

from modelmux.translate.sse import EventSplitter, parse_event

DELTA = ("stop_reason", "stop_sequence", "stop_details", "container")  # what message_delta changes


class Assembly:
    def __init__(self) -> None:
        self.message: dict[str, Any] | None = None
        self.error: dict[str, Any] | None = None  # an error event's `error`
        self.ended = False  # message_stop came
        self._splitter = EventSplitter()
        self._arguments: dict[int, str] = {}  # tool_use index → its input JSON so far

    def feed(self, data: bytes) -> None:
        for raw in self._splitter.feed(data):
            event = parse_event(raw)
            if event.data.strip():
                self._event(json.loads(event.data))

    @property
    def content_started(self) -> bool:
        return bool(self.message and self.message["content"])

    def _event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "message_start":
            self.message = {**event["message"], "content": []}
        elif kind == "error":
            self.error = event.get("error") or {"type": "api_error", "message": "the stream ended with an error"}
        elif self.message is None:
            return
        elif kind == "content_block_start":
            self.message["content"].append(dict(event["content_block"]))
        elif kind == "content_block_delta":
            self._delta(event["index"], event["delta"])
        elif kind == "content_block_stop":
            if (index := event["index"]) in self._arguments:
                self._input(self.message["content"][index], self._arguments.pop(index))
        elif kind == "message_delta":
            self.message.update({k: v for k, v in (event.get("delta") or {}).items() if k in DELTA})
            self.message["usage"] = {**self.message.get("usage", {}), **(event.get("usage") or {})}
        elif kind == "message_stop":
            self.ended = True

    def _input(self, block: dict[str, Any], text: str) -> None:
        """A tool_use block's input: the arguments streamed, which a stream cut off by
        max_tokens may leave unfinished. A whole message cannot hold those as they are."""
        try:
            found = json.loads(text) if text.strip() else {}
        except ValueError:
            found = None
        if isinstance(found, dict):
            block["input"] = found
        elif self.error is None:
            self.error = {"type": "api_error", "message": f"the answer cannot be whole: the arguments of its call to "
                                                         f"'{block.get('name')}' are not a JSON object: {text[:120]!r}"}

    def _delta(self, index: int, delta: dict[str, Any]) -> None:
        assert self.message is not None
        block = self.message["content"][index]
        kind = delta.get("type")
        if kind == "text_delta":
            block["text"] = block.get("text", "") + delta["text"]
        elif kind == "thinking_delta":
            block["thinking"] = block.get("thinking", "") + delta["thinking"]
        elif kind == "signature_delta":
            block["signature"] = delta["signature"]
        elif kind == "input_json_delta":
            self._arguments[index] = self._arguments.get(index, "") + delta["partial_json"]

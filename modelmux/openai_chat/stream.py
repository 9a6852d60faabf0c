"""OpenAI Chat Completions SSE → Anthropic SSE: an explicit state machine. Pure.

Anthropic blocks never interleave: one block is open at a time, and its deltas
must belong to it. OpenAI streams parallel tool calls by `index`, and a few
upstreams interleave their argument fragments. A tool block therefore opens as
soon as its name is known and streams its arguments; anything else that arrives
while the open call's arguments are not yet complete JSON waits in a queue, so no
block is closed before its call is whole.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from modelmux import messages, toolnames
from modelmux.anthropic_side import UNNAMED_TOOL
from modelmux.errors import GatewayError
from modelmux.messages import PING
from modelmux.openai_chat import google
from modelmux.openai_chat.response import (
    UNREPLAYED,
    Context,
    bad_arguments,
    content_pieces,
    contradiction,
    error_of,
    legacy_call,
    matched_stop,
    stop_of,
    tool_input,
    usage,
)
from modelmux.sse import format_event, parse_event
from modelmux.translated_stream import TranslatedStream, text_delta, text_delta_prefix


@dataclass
class Tool:
    id: str | None = None
    name: str = ""
    arguments: str = ""
    block: int | None = None  # the Anthropic block index once started
    queued: bool = False
    signature: str | None = None  # Gemini's (google.py), carried on a thinking block beside the call's
    signed_late: bool = False  # it came after the call's block started: its carrier follows the block
    _checked: int = -1  # len(arguments) when completeness was last checked
    _complete: bool = False

    def complete(self) -> bool:
        """Whether the arguments so far form a whole JSON value (then no more can follow)."""
        if self._checked != len(self.arguments):
            self._checked = len(self.arguments)
            try:
                json.loads(self.arguments)
                self._complete = True
            except ValueError:
                self._complete = False
        return self._complete


@dataclass
class Block:
    index: int
    kind: str  # "text", "thinking" or "tool_use"
    tool: Tool | None = None


class ChatStream(TranslatedStream):
    """Feed upstream bytes in any chunking, get Anthropic SSE events back."""

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self._finish: str | None = None
        self._matched: str | None = None  # the stop sequence the upstream says it stopped at
        self._refused = False
        self._usage: dict[str, Any] | None = None
        self._open: Block | None = None
        self._next_index = 0
        self._tools: dict[int, Tool] = {}
        self._queue: list[tuple[str, Any]] = []
        self._called_tools = False
        self._text_delta_prefix = b""  # the open block's text_delta event, up to the text

    def _complete(self) -> bool:
        """A finish_reason or [DONE] came."""
        return self._finish is not None

    # -- upstream events ----------------------------------------------------------

    def _event(self, raw: bytes) -> list[bytes]:
        if self._ended:
            return []
        if raw.startswith(b"data: {"):  # nearly every event: one JSON chunk on one line
            try:
                chunk = json.loads(raw[6:])
            except ValueError:
                pass  # several data lines, or no JSON: read in full below
            else:
                return self._chunk(chunk) if isinstance(chunk, dict) else self._unreadable(raw)
        try:
            event = parse_event(raw)
            if not event.data:
                # SSE comments are keep-alives (OpenRouter sends them while it waits).
                return [PING] if raw.lstrip().startswith(b":") else []
            if event.data.strip() == "[DONE]":
                return self._end()
            chunk = json.loads(event.data)
        except ValueError:  # not UTF-8, or not JSON
            return self._unreadable(raw)
        return self._chunk(chunk) if isinstance(chunk, dict) else self._unreadable(raw)

    def _chunk(self, chunk: dict[str, Any]) -> list[bytes]:
        if self._open is not None and self._open.kind == "text" and not self._queue:
            # The hot path, a text delta while its text block is open: straight to bytes.
            choice = (chunk.get("choices") or [{}])[0]
            delta = choice.get("delta")
            if (delta and len(delta) == 1 and isinstance(text := delta.get("content"), str)
                    and not choice.get("finish_reason") and not chunk.get("usage") and "error" not in chunk):
                return [text_delta(self._text_delta_prefix, text)] if text else []
        if isinstance(chunk.get("error"), dict):
            return self._fail(error_of(chunk["error"]))
        if chunk.get("object") == "error":  # vLLM's older error shape
            return self._fail(error_of(chunk))
        if chunk.get("usage"):
            self._usage = chunk["usage"]  # repeated on every chunk by some servers: the last wins
        out: list[bytes] = []
        for choice in (chunk.get("choices") or [])[:1]:
            out += self._delta(choice.get("delta") or {})
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
                self._matched = matched_stop(choice)
        return out

    def _delta(self, delta: dict[str, Any]) -> list[bytes]:
        """Thinking, then text, then tool calls: Anthropic's order within a turn."""
        out: list[bytes] = []
        for field in ("reasoning_content", "reasoning"):
            if isinstance(delta.get(field), str):
                out += self._text("thinking", delta[field])
        try:
            pieces = content_pieces(delta.get("content"))
        except GatewayError as error:
            return out + self._fail(error)
        for kind, text in pieces:
            if kind == "signature":
                self._log_once(kind, UNREPLAYED)
            else:
                out += self._text(kind, text)
        if isinstance(delta.get("refusal"), str):
            out += self._text("text", delta["refusal"])
        self._refused = self._refused or bool(delta.get("refusal"))
        fragments = [*(delta.get("tool_calls") or ()), *filter(None, [legacy_call(delta.get("function_call"))])]
        for fragment in fragments:
            out += self._tool_fragment(fragment)
        return out

    # -- blocks ---------------------------------------------------------------------

    def _blocked(self) -> bool:
        return self._open is not None and self._open.tool is not None and not self._open.tool.complete()

    def _text(self, kind: str, text: str) -> list[bytes]:
        if not text:
            return []
        self._queue.append((kind, text))
        return self._drain(force=False)

    def _write_text(self, kind: str, text: str) -> list[bytes]:
        out = []
        if self._open is None or self._open.kind != kind:
            out += self._open_block(kind, messages.text_block("") if kind == "text" else messages.thinking_block())
        delta = {"type": "text_delta", "text": text} if kind == "text" else {"type": "thinking_delta", "thinking": text}
        return out + [self._block_delta(delta)]

    def _tool_fragment(self, fragment: dict[str, Any]) -> list[bytes]:
        index = fragment.get("index")
        if not isinstance(index, int):  # some servers omit it for single calls
            index = max(self._tools, default=0) if not fragment.get("id") else len(self._tools)
        tool = self._tools.setdefault(index, Tool())
        function = fragment.get("function") or {}
        tool.id = tool.id or fragment.get("id")
        tool.name = tool.name or function.get("name") or ""
        if tool.signature is None and (signature := google.signature_of(fragment)):
            # Google sends a call whole, signature and all; one that came after its block
            # started follows the block, while it is open (there is no place for it later).
            tool.signature, tool.signed_late = signature, self._open is not None and self._open.tool is tool
        arguments = function.get("arguments") or ""
        if not isinstance(arguments, str):  # a few servers send an object
            arguments = json.dumps(arguments, ensure_ascii=False)
        tool.arguments += arguments
        self._called_tools = True
        if self._open is not None and self._open.tool is tool:
            out = [self._block_delta({"type": "input_json_delta", "partial_json": arguments})] if arguments else []
            return out + self._drain(force=False)
        if tool.block is not None:  # its block was closed as complete: nothing valid can follow
            name = self.context.tool_names.get(tool.name, tool.name)
            return self._broken(f"more arguments came for its call to '{name}' after they were whole") \
                if arguments.strip() else []
        if not tool.queued:
            tool.queued = True
            self._queue.append(("tool_use", tool))
        return self._drain(force=False)  # it may have just got its name

    def _write_tool(self, tool: Tool) -> list[bytes]:
        tool.queued = False
        name = tool.name or UNNAMED_TOOL
        start = messages.tool_use_block(toolnames.client_id(tool.id), self.context.tool_names.get(name, name), {})
        out = self._carrier(tool.signature) if tool.signature else []
        out += self._open_block("tool_use", start, tool)
        tool.block = self._open.index if self._open else None
        if tool.arguments:
            out.append(self._block_delta({"type": "input_json_delta", "partial_json": tool.arguments}))
        return out

    def _drain(self, force: bool) -> list[bytes]:
        """Write what is queued, in arrival order, as far as the open block allows: at
        once when no unfinished tool call is open."""
        out: list[bytes] = []
        while self._queue and (force or not self._blocked()):
            kind, item = self._queue[0]
            if kind == "tool_use" and not item.name and not force:
                break  # its name has not arrived yet
            self._queue.pop(0)
            out += self._write_tool(item) if kind == "tool_use" else self._write_text(kind, item)
        return out

    def _open_block(self, kind: str, start: dict[str, Any], tool: Tool | None = None) -> list[bytes]:
        out = self._close_block()
        self._open = Block(self._next_index, kind, tool)
        self._next_index += 1
        self._text_delta_prefix = text_delta_prefix(self._open.index)
        return out + [format_event("content_block_start", {"type": "content_block_start", "index": self._open.index, "content_block": start})]

    def _block_delta(self, delta: dict[str, Any]) -> bytes:
        assert self._open is not None
        return format_event("content_block_delta", {"type": "content_block_delta", "index": self._open.index, "delta": delta})

    def _close_block(self) -> list[bytes]:
        if self._open is None:
            return []
        closed, self._open = self._open, None
        out = [format_event("content_block_stop", {"type": "content_block_stop", "index": closed.index})]
        if closed.tool is not None and closed.tool.signed_late:
            closed.tool.signed_late = False
            out += self._carrier(closed.tool.signature or "", late=True) + self._close_block()
        return out

    def _carrier(self, signature: str, late: bool = False) -> list[bytes]:
        """A thinking block carrying a call's signature (google.py); the next block closes it."""
        delta = {"type": "signature_delta", "signature": google.carried(signature, late)}
        return self._open_block("thinking", messages.thinking_block()) + [self._block_delta(delta)]

    # -- the end --------------------------------------------------------------------

    def _end(self) -> list[bytes]:
        if problem := contradiction(self._finish, self._called_tools) or self._bad_call():
            return self._broken(problem)
        out = self._drain(force=True) + self._close_block()
        self._ended = True
        reason, sequence = stop_of(self._finish, self._called_tools, self._refused, self._matched)
        return out + messages.message_end(reason, sequence, usage(self._usage))

    def _bad_call(self) -> str | None:
        """A call whose arguments are not a JSON object: the client would read something
        else than the model said (or nothing). Cut off by max_tokens, partial arguments
        are what Anthropic streams too."""
        if self._finish == "length":
            return None
        bad = next((t for t in self._tools.values() if tool_input(t.arguments) is None), None)
        return bad_arguments(self.context.tool_names.get(bad.name, bad.name), bad.arguments) if bad else None

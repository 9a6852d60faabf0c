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

from modelmux.errors import GatewayError
from modelmux.translate import tool_names
from modelmux.translate.anthropic_side import UNNAMED_TOOL
from modelmux.translate.openai_chat import google
from modelmux.translate.openai_chat.response import (
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
from modelmux.translate.sse import loads, parse_event
from modelmux.translate.stream_writer import TEXT, THINKING, TOOL_USE
from modelmux.translate.translated_stream import TranslatedStream


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


class ChatStream(TranslatedStream):
    """Feed upstream bytes in any chunking, get Anthropic SSE events back."""

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self._finish: str | None = None
        self._matched: str | None = None  # the stop sequence the upstream says it stopped at
        self._refused = False
        self._usage: dict[str, Any] | None = None
        self._tools: dict[int, Tool] = {}
        self._queue: list[tuple[str, Any]] = []
        self._called_tools = False
        self._writing: Tool | None = None  # the call whose tool_use block is open

    def _complete(self) -> bool:
        """A finish_reason or [DONE] came."""
        return self._finish is not None

    # -- upstream events ----------------------------------------------------------

    def _event(self, raw: bytes) -> None:
        if raw.startswith(b"data: {"):  # nearly every event: one JSON chunk on one line
            try:
                # As json.loads(bytes) reads them, without its three Python calls (sse.loads)
                chunk = loads(raw[6:].decode("utf-8", "surrogatepass"))
            except ValueError:
                pass  # several data lines, or no JSON: read in full below
            else:
                self._chunk(chunk)  # JSON that starts with { is an object
                return
        try:
            event = parse_event(raw)
            if not event.data:
                self._keep_alive(raw)
                return
            if event.data.strip() == "[DONE]":
                self._end()
                return
            chunk = event.json()
        except ValueError:  # not UTF-8, or not JSON
            self._unreadable(raw)
            return
        if isinstance(chunk, dict):
            self._chunk(chunk)
        else:
            self._unreadable(raw)

    def _chunk(self, chunk: dict[str, Any]) -> None:
        if self.writer.kind == TEXT and not self._queue:
            # The hot path, a text delta while its text block is open: straight to bytes.
            choice = (chunk.get("choices") or [{}])[0]
            delta = choice.get("delta")
            if (delta and len(delta) == 1 and isinstance(text := delta.get("content"), str)
                    and not choice.get("finish_reason") and not chunk.get("usage") and "error" not in chunk):
                self.writer.text(text)
                return
        if isinstance(chunk.get("error"), dict):
            self._fail(error_of(chunk["error"]))
            return
        if chunk.get("object") == "error":  # vLLM's older error shape
            self._fail(error_of(chunk))
            return
        if chunk.get("usage"):
            self._usage = chunk["usage"]  # repeated on every chunk by some servers: the last wins
        for choice in (chunk.get("choices") or [])[:1]:
            self._delta(choice.get("delta") or {})
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
                self._matched = matched_stop(choice)

    def _delta(self, delta: dict[str, Any]) -> None:
        """Thinking, then text, then tool calls: Anthropic's order within a turn."""
        for field in ("reasoning_content", "reasoning"):
            if isinstance(delta.get(field), str):
                self._text(THINKING, delta[field])
        try:
            pieces = content_pieces(delta.get("content"))
        except GatewayError as error:
            self._fail(error)
            return
        for kind, text in pieces:
            if kind == "signature":
                self._log_once(kind, UNREPLAYED)
            else:
                self._text(kind, text)
        if isinstance(delta.get("refusal"), str):
            self._text(TEXT, delta["refusal"])
        self._refused = self._refused or bool(delta.get("refusal"))
        fragments = [*(delta.get("tool_calls") or ()), *filter(None, [legacy_call(delta.get("function_call"))])]
        for fragment in fragments:
            if self.writer.ended:  # a fragment that broke the answer: nothing follows its error
                return
            self._tool_fragment(fragment)

    # -- blocks ---------------------------------------------------------------------

    def _blocked(self) -> bool:
        return self._writing is not None and not self._writing.complete()

    def _text(self, kind: str, text: str) -> None:
        if text:
            self._queue.append((kind, text))
            self._drain(force=False)

    def _write_text(self, kind: str, text: str) -> None:
        if self.writer.kind != kind:
            self._open(kind)
        if kind == TEXT:
            self.writer.text(text)
        else:
            self.writer.thinking(text)

    def _tool_fragment(self, fragment: dict[str, Any]) -> None:
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
            tool.signature, tool.signed_late = signature, self._writing is tool
        arguments = function.get("arguments") or ""
        if not isinstance(arguments, str):  # a few servers send an object
            arguments = json.dumps(arguments, ensure_ascii=False)
        tool.arguments += arguments
        self._called_tools = True
        if self._writing is tool:
            self.writer.input_json(arguments)
        elif tool.block is not None:  # its block was closed as complete: nothing valid can follow
            if arguments.strip():
                name = self.context.tool_names.get(tool.name, tool.name)
                self._broken(f"more arguments came for its call to '{name}' after they were whole")
            return
        elif not tool.queued:
            tool.queued = True
            self._queue.append((TOOL_USE, tool))
        self._drain(force=False)  # it may have just got its name

    def _write_tool(self, tool: Tool) -> None:
        tool.queued = False
        name = tool.name or UNNAMED_TOOL
        if tool.signature:
            self._carrier(tool.signature)
        self._close_block()
        self.writer.open_tool_use(tool_names.client_id(tool.id), self.context.tool_names.get(name, name))
        self._writing, tool.block = tool, self.writer.index
        self.writer.input_json(tool.arguments)

    def _drain(self, force: bool) -> None:
        """Write what is queued, in arrival order, as far as the open block allows: at
        once when no unfinished tool call is open."""
        while self._queue and (force or not self._blocked()):
            kind, item = self._queue[0]
            if kind == TOOL_USE and not item.name and not force:
                break  # its name has not arrived yet
            self._queue.pop(0)
            if kind == TOOL_USE:
                self._write_tool(item)
            else:
                self._write_text(kind, item)

    def _open(self, kind: str) -> None:
        """A text or thinking block, after the open one."""
        self._close_block()
        self.writer.open(kind)

    def _close_block(self) -> None:
        if self.writer.kind is None:
            return
        closed, self._writing = self._writing, None
        self.writer.close()
        if closed is not None and closed.signed_late:
            closed.signed_late = False
            self._carrier(closed.signature or "", late=True)
            self._close_block()

    def _carrier(self, signature: str, late: bool = False) -> None:
        """A thinking block carrying a call's signature (google.py); the next block closes it."""
        self._open(THINKING)
        self.writer.signature(google.carried(signature, late))

    # -- the end --------------------------------------------------------------------

    def _end(self) -> None:
        if problem := contradiction(self._finish, self._called_tools) or self._bad_call():
            self._broken(problem)
            return
        self._drain(force=True)
        self._close_block()
        reason, sequence = stop_of(self._finish, self._called_tools, self._refused, self._matched)
        self.writer.end(reason, sequence, usage(self._usage))

    def _bad_call(self) -> str | None:
        """A call whose arguments are not a JSON object: the client would read something
        else than the model said (or nothing). Cut off by max_tokens, partial arguments
        are what Anthropic streams too."""
        if self._finish == "length":
            return None
        bad = next((t for t in self._tools.values() if tool_input(t.arguments) is None), None)
        return bad_arguments(self.context.tool_names.get(bad.name, bad.name), bad.arguments) if bad else None

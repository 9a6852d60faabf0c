"""OpenAI Responses SSE → Anthropic SSE: an explicit state machine. Pure.

The Responses stream is a sequence of output items (`response.output_item.added`
… `.done`), each filling its parts by deltas keyed by `item_id`. Each item becomes
one Anthropic block: a message item a text block, a function_call a tool_use block,
a reasoning item a thinking block whose signature (sent last, when the item is done
and its encrypted content known) carries the reasoning state to the next turn.

Anthropic blocks never interleave, so items are written in the order they were
announced: the first unfinished item streams as it comes, and what arrives for a
later one waits until the earlier is done. (OpenAI sends items one after the other,
so in practice nothing waits.) What is written is tracked per part, so a `.done`
event or a finished item that carries more than its deltas did (a server that sends
arguments only in `function_call_arguments.done`, or no deltas at all) adds the
rest, and one that repeats them adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelmux.errors import GatewayError
from modelmux.translate.anthropic_side import UNNAMED_TOOL, bad_arguments, tool_input
from modelmux.translate.openai_responses.response import (
    PART_SEPARATOR,
    REASONING_PARTS,
    SKIPPED_ITEM,
    Context,
    arguments_of,
    failure,
    message_part,
    signature,
    stop_reason,
    tool_use_start,
    usage,
)
from modelmux.translate.sse import parse_event
from modelmux.translate.stream_writer import TEXT, THINKING, TOOL_USE
from modelmux.translate.translated_stream import TranslatedStream

KINDS = {"message": TEXT, "reasoning": THINKING, "function_call": TOOL_USE}
# delta event → (item kind, part name, index field)
PART_DELTAS = {
    "response.output_text.delta": ("text", "text", "content_index"),
    "response.refusal.delta": ("text", "refusal", "content_index"),
    "response.function_call_arguments.delta": ("tool_use", "arguments", None),
    "response.reasoning_summary_text.delta": ("thinking", "summary", "summary_index"),
    "response.reasoning_text.delta": ("thinking", "reasoning", "content_index"),
}
# done event → (item kind, part name, index field, field with the whole part)
PART_DONES = {
    "response.output_text.done": ("text", "text", "content_index", "text"),
    "response.refusal.done": ("text", "refusal", "content_index", "refusal"),
    "response.function_call_arguments.done": ("tool_use", "arguments", None, "arguments"),
    "response.reasoning_summary_text.done": ("thinking", "summary", "summary_index", "text"),
    "response.reasoning_text.done": ("thinking", "reasoning", "content_index", "text"),
}

# The rest of the events the Responses API defines (its streaming reference). These
# carry nothing to write: what they hold comes again in the events above, the
# finished item or the final response.
STRUCTURE = frozenset({
    "response.created", "response.in_progress", "response.queued", "response.content_part.added",
    "response.content_part.done", "response.reasoning_summary_part.added", "response.reasoning_summary_part.done",
})  # fmt: skip
# ... and those of what modelmux never asks for (hosted tools: web and file search, code
# interpreter, image generation, MCP; custom tools; audio; citations): were a server to
# send them anyway, an Anthropic client has no block for them. Skipped, and logged.
UNASKED = (
    "response.web_search_call.", "response.file_search_call.", "response.code_interpreter_call",
    "response.image_generation_call.", "response.mcp_", "response.custom_tool_call_input.", "response.audio.",
    "response.output_text.annotation.added",
)  # fmt: skip

Part = tuple[str, int]  # (part name, index)


@dataclass
class Item:
    """One output item: what has arrived per part, and what is still to be written."""

    id: str
    kind: str  # "text", "thinking" or "tool_use"
    start: dict[str, Any] | None = None  # a tool_use block's head, from its announcement
    parts: dict[Part, list[str]] = field(default_factory=dict)  # joined only when a done event needs it
    pending: list[str] = field(default_factory=list)
    signature: str = ""
    done: bool = False
    block: int | None = None  # the Anthropic block index once started


class ResponsesStream(TranslatedStream):
    """Feed upstream bytes in any chunking, get Anthropic SSE events back."""

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self.context: Context = context
        self._response: dict[str, Any] | None = None  # the final response, once completed or incomplete
        self._items: dict[str, Item] = {}
        self._queue: list[Item] = []  # unfinished items in output order; the first one is being written
        self._called_tools = False
        self._refused = False

    def _complete(self) -> bool:
        """response.completed or .incomplete came (and ended the answer at once)."""
        return self._response is not None

    # -- upstream events ------------------------------------------------------------

    def _event(self, raw: bytes) -> None:
        try:
            event = parse_event(raw)
            if not event.data:
                self._keep_alive(raw)
                return
            if event.data.strip() == "[DONE]":
                return  # some servers end with it; the terminal events are what count
            data = event.json()
        except ValueError:  # not UTF-8, or not JSON
            self._unreadable(raw)
            return
        if not isinstance(data, dict):
            self._unreadable(raw)
            return
        kind = data.get("type") or event.name
        if kind == "response.output_text.delta" and self._queue and self._writes(data.get("item_id")):
            # The hot path, text for the open text block: straight to bytes.
            item, text = self._queue[0], data.get("delta")
            if isinstance(text, str) and text and not item.pending:
                part = ("text", _index(data, "content_index"))
                if part in item.parts:
                    item.parts[part].append(text)
                    self.writer.text(text)
                    return
        if kind in PART_DELTAS:
            item_kind, name, index = PART_DELTAS[kind]
            item = self._item(data.get("item_id"), item_kind)
            self._add(item, (name, _index(data, index)), data.get("delta"))
            self._refused = self._refused or name == "refusal"
            self._pump()
        elif kind in PART_DONES:
            item_kind, name, index, whole = PART_DONES[kind]
            item = self._item(data.get("item_id"), item_kind)
            self._fill(item, (name, _index(data, index)), data.get(whole))
            self._pump()
        elif kind in ("response.output_item.added", "response.output_item.done"):
            self._output_item(data.get("item"), done=kind.endswith("done"))
        elif kind in ("response.completed", "response.incomplete"):
            self._response = data.get("response") if isinstance(data.get("response"), dict) else {}
            self._end()
        elif kind == "response.failed":
            self._fail(failure((data.get("response") or {}).get("error")))
        elif kind == "error":
            self._fail(failure(data.get("error") if isinstance(data.get("error"), dict) else data))
        elif isinstance(kind, str) and kind.startswith(UNASKED):
            self._log_once(kind, "skipping %s events of a Responses stream: modelmux never asks for them", kind)
        elif kind not in STRUCTURE:
            self._broken(f"it sent an event the Responses API does not define: {str(kind)[:80]!r}")

    def _output_item(self, raw: Any, done: bool) -> None:
        """An item announced or finished: its whole parts so far, and its head."""
        if not isinstance(raw, dict) or raw.get("type") not in KINDS:
            kind = str(raw.get("type") if isinstance(raw, dict) else None)[:80]
            self._log_once(f"item {kind}", SKIPPED_ITEM, kind)
            return
        item = self._item(raw.get("id"), KINDS[raw["type"]])
        if item.kind == TOOL_USE:
            self._called_tools = True
            if raw.get("name") or raw.get("call_id"):
                item.start = tool_use_start(raw, self.context)
            self._fill(item, ("arguments", 0), arguments_of(raw))
        elif item.kind == TEXT:
            for index, part in enumerate(raw.get("content") or ()):
                try:
                    name, text = message_part(part)
                except GatewayError as error:
                    self._fail(error)
                    return
                self._refused = self._refused or name == "refusal"
                self._fill(item, (name, index), text)
        else:
            for index, part in enumerate(raw.get("summary") or ()):
                self._fill(item, ("summary", index), part.get("text") if isinstance(part, dict) else None)
            for index, part in enumerate(raw.get("content") or ()):
                if isinstance(part, dict) and part.get("type") in REASONING_PARTS:
                    self._fill(item, ("reasoning", index), part.get("text"))
            if done:
                item.signature = signature(raw, self.context)
        item.done = item.done or done
        self._pump()

    # -- items ----------------------------------------------------------------------

    def _item(self, item_id: Any, kind: str) -> Item:
        """The item with that id, or a new one: some servers (LM Studio) send deltas for
        items they never announced."""
        key = item_id if isinstance(item_id, str) and item_id else f"unnamed-{kind}"
        item = self._items.get(key)
        if item is None:
            item = self._items[key] = Item(key, kind)
            self._queue.append(item)
        return item

    def _add(self, item: Item, part: Part, delta: Any) -> None:
        if not isinstance(delta, str) or not delta:
            return
        if part not in item.parts:
            if item.kind == THINKING and any(item.parts.values()):
                item.pending.append(PART_SEPARATOR)  # summary parts are paragraphs
            item.parts[part] = []
        item.parts[part].append(delta)
        item.pending.append(delta)

    def _fill(self, item: Item, part: Part, whole: Any) -> None:
        """A part's whole text: whatever its deltas did not bring yet is added."""
        if not isinstance(whole, str):
            return
        have = "".join(item.parts.get(part, ()))
        if whole.startswith(have):
            self._add(item, part, whole[len(have) :])

    def _writes(self, item_id: Any) -> bool:
        """Whether the open block is that item's, and a text block."""
        item = self._queue[0]
        return item.id == item_id and item.block is not None and item.block == self.writer.index \
            and self.writer.kind == TEXT

    # -- blocks ---------------------------------------------------------------------

    def _pump(self) -> None:
        """Write the first unfinished item's news; when it is done, close it and go on
        to the next one."""
        while self._queue:
            item = self._queue[0]
            self._write(item)
            if not item.done:
                break
            self._finish(item)
            self._queue.pop(0)

    def _write(self, item: Item) -> None:
        writer = self.writer
        if item.block is None and item.kind == TOOL_USE and ((item.start and item.start["name"]) or item.done):
            start = item.start or tool_use_start({}, self.context)
            writer.open_tool_use(start["id"], start["name"] or UNNAMED_TOOL)
            item.block = writer.index
        if not item.pending or (item.kind == TOOL_USE and item.block is None):
            return  # a tool call waits for its name
        text, item.pending = "".join(item.pending), []
        if item.block is None:
            writer.open(item.kind)
            item.block = writer.index
        if item.kind == TEXT:
            writer.text(text)
        elif item.kind == THINKING:
            writer.thinking(text)
        else:
            writer.input_json(text)

    def _finish(self, item: Item) -> None:
        if item.signature:
            if item.block is None:  # reasoning without a summary still carries its state
                self.writer.open(THINKING)
                item.block = self.writer.index
            self.writer.signature(item.signature)
        if item.block is not None:
            self.writer.close()

    # -- the end --------------------------------------------------------------------

    def _end(self) -> None:
        """The answer is complete: items the final response holds but the stream did not
        finish are completed from it, and everything still open is written and closed."""
        response = self._response or {}
        for raw in response.get("output") or ():
            if isinstance(raw, dict) and not (raw.get("id") in self._items and self._items[raw["id"]].done):
                self._output_item(raw, done=True)
                if self.writer.ended:  # an item it cannot give
                    return
        if problem := self._bad_call(response):
            self._broken(problem)
            return
        try:
            reason = stop_reason(response, self._called_tools, self._refused)
        except GatewayError as error:
            self._fail(error)
            return
        for item in self._queue:
            item.done = True
        self._pump()
        self.writer.end(reason, None, usage(response.get("usage")))

    def _bad_call(self, response: dict[str, Any]) -> str | None:
        """A call whose arguments are not a JSON object (unless cut off by the output
        limit, as Anthropic streams them too): the client would read something else."""
        if response.get("status") == "incomplete":
            return None
        for item in self._items.values():
            arguments = "".join(item.parts.get(("arguments", 0), ()))
            if item.kind == TOOL_USE and tool_input(arguments) is None:
                return bad_arguments((item.start or {}).get("name") or UNNAMED_TOOL, arguments)
        return None


def _index(data: dict[str, Any], name: str | None) -> int:
    """A part's index within its item (content_index, summary_index); 0 when absent."""
    index = data.get(name) if name else 0
    return index if isinstance(index, int) else 0

"""Input-token estimate for an Anthropic Messages request, computed locally.

Routes to non-Anthropic upstreams have nobody to answer /v1/messages/count_tokens, and
Claude Code manages its context from that number (and shows message_start's
usage.input_tokens). So the estimate must never fail, never be 0, and be cheap enough to
compute for every request. bench/token_accuracy.py measures how close it is to a real
tokenizer and how long it takes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from modelmux.translate.media import (
    PDF_PAGE_TOKENS,
    PDF_UNKNOWN_PAGES,
    b64decode,
    image_block_tokens,
    pdf_page_count,
)
from modelmux.translate.repeated import Kept

# --- Fixed costs --------------------------------------------------------------------------
# Anthropic's tool-use pricing docs: declaring tools adds a tool-use system prompt of 346
# tokens (tool_choice auto/none) or 313 (any/tool) on Claude 4 models.
TOOL_PROMPT_TOKENS = {"auto": 346, "none": 346, "any": 313, "tool": 313}
# Anthropic-defined tools come as a type, not a schema; Anthropic's bash, text editor and
# computer use docs put their definitions at 245, 700 and 735 tokens. Server tools (web
# search, web fetch, code execution) are undocumented: assume a short definition.
BUILTIN_TOOL_TOKENS = {"bash": 245, "text_editor": 700, "computer": 735}
SERVER_TOOL_TOKENS = 150
# Framing around content (role markers, turn separators, tool-call markup) is not
# published; these are small guesses, a few percent of a real request at most.
REQUEST_TOKENS = 4
MESSAGE_TOKENS = 4
BLOCK_TOKENS = 1
TOOL_TOKENS = 6  # per tool definition, around its name, description and schema
TOOL_CALL_TOKENS = 8  # per tool_use / tool_result, around the id and the payload

_MAX_DEPTH = 16  # nesting of content lists we walk; deeper input is counted as JSON


def estimate_input_tokens(body: dict[str, Any]) -> int:
    """The estimated input tokens of an Anthropic Messages request body; never raises, never < 1."""
    if not isinstance(body, dict):
        texts, fixed = request_parts(body)
        return max(1, fixed + round(sum(map(_text_cost, texts))))
    fixed, cost = REQUEST_TOKENS, 0.0
    for part, count in _parts(body):
        more, costs = _counted(part, count)
        fixed, cost = fixed + more, cost + costs
    return max(1, fixed + round(cost))


def request_parts(body: Any) -> tuple[list[str], int]:
    """A request as the texts to tokenize (system, each message, the tools) and the tokens of the rest.

    Separate from estimate_input_tokens so that the bench can count exactly these texts
    with a real tokenizer. One text per message lets _text_cost remember the history,
    which Claude Code resends unchanged with every turn.
    """
    if not isinstance(body, dict):
        parts = _Parts()
        parts.text(body)
        return parts.close(), REQUEST_TOKENS + parts.fixed
    texts, fixed = [], REQUEST_TOKENS
    for part, count in _parts(body):
        more, fixed_more = count(part)
        texts += more
        fixed += fixed_more
    return texts, fixed


Count = Callable[[Any], tuple[list[str], int]]


def _parts(body: dict[str, Any]) -> list[tuple[Any, Count]]:
    """The request's parts, each with how its texts and fixed tokens are read."""
    parts: list[tuple[Any, Count]] = []
    if body.get("system"):
        parts.append((body["system"], _system))
    messages = body.get("messages")
    parts += [(message, _message) for message in (messages if isinstance(messages, list) else ())]
    tools = body.get("tools")
    if isinstance(tools, list) and tools:
        parts.append(((tools, body.get("tool_choice")), _tools))
    return parts


def _system(system: Any) -> tuple[list[str], int]:
    parts = _Parts()
    parts.fixed += MESSAGE_TOKENS
    parts.content(system)
    return parts.close(), parts.fixed


def _message(message: Any) -> tuple[list[str], int]:
    """A message's texts and fixed tokens; role: "system" messages too."""
    return _system(message.get("content") if isinstance(message, dict) else message)


def _tools(tools_and_choice: tuple[list[Any], Any]) -> tuple[list[str], int]:
    parts = _Parts()
    parts.tools(*tools_and_choice)
    return parts.close(), parts.fixed


# Claude Code sends its earlier turns and its tools again with every request, and
# repeated.Recent gives a repeated one the same parsed item: its count is remembered
# by the item, for as long as Recent holds it (repeated.Kept). Without this a
# translated stream's estimate cost 200 µs of every request (docs/benchmarks.md).
_COUNTED: Kept[tuple[int, float]] = Kept()  # key → (fixed, cost)
_COUNTED_MIN_COST = 64.0  # tokens; a smaller part is counted again, cheaper than kept


def _counted(part: Any, count: Count) -> tuple[int, float]:
    """`part`'s fixed tokens and the cost of its texts."""
    if count is _system and isinstance(part, list):  # the list is new with each request, its blocks are not
        items: tuple[Any, ...] = tuple(part)
        key: Any = tuple(map(id, items))
    elif count is not _tools:  # a message, or the system's text
        items, key = (part,), id(part)
    else:  # as the system's blocks
        tools, choice = part
        items = tuple(tools)
        key = (tuple(map(id, items)), repr(choice))
    if (known := _COUNTED.get(key)) is not None:
        return known
    texts, fixed = count(part)
    cost = sum(map(_text_cost, texts))
    if cost >= _COUNTED_MIN_COST:
        _COUNTED.put(key, items, (fixed, cost))
    return fixed, cost


class _Parts:
    """Collects the texts of a request, one per system / message / tools, and its fixed costs."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.fixed = 0
        self._strings: list[str] = []
        self._structured: list[Any] = []  # tool inputs, schemas, unknown blocks: one JSON dump

    def close(self) -> list[str]:
        """End the current text (if any) and return all texts so far."""
        if self._structured:
            self._strings.append(_json(self._structured))
        if self._strings:
            self.texts.append("\n".join(self._strings))
        self._strings, self._structured = [], []
        return self.texts

    def text(self, value: Any) -> None:
        if isinstance(value, str):
            if value:
                self._strings.append(value)
        elif value is not None:
            self._structured.append(value)

    def content(self, content: Any, depth: int = 0) -> None:
        """A message's or tool_result's content: a string, a list of blocks, or one block."""
        if isinstance(content, list) and depth < _MAX_DEPTH:
            for block in content:
                self.block(block, depth + 1)
        elif isinstance(content, dict) and depth < _MAX_DEPTH:
            self.block(content, depth + 1)
        else:
            self.text(content)

    def block(self, block: Any, depth: int) -> None:
        if not isinstance(block, dict):
            self.text(block)
            return
        self.fixed += BLOCK_TOKENS
        kind = block.get("type")
        if kind == "text":
            self.text(block.get("text"))
        elif kind == "image":
            self.fixed += image_block_tokens(block.get("source"))
        elif kind == "document":
            self.document(block, depth)
        elif kind in ("tool_use", "server_tool_use", "mcp_tool_use"):
            self.fixed += TOOL_CALL_TOKENS
            self.text(block.get("name"))
            self.text(block.get("input"))
        elif kind in ("tool_result", "mcp_tool_result"):
            self.fixed += TOOL_CALL_TOKENS + (2 if block.get("is_error") else 0)
            self.content(block.get("content"), depth)
        elif kind == "thinking":
            # Counted: the upstream is sent an assistant turn's reasoning again.
            self.text(block.get("thinking"))
        elif kind == "redacted_thinking":
            self.text(block.get("data"))
        else:  # web_search_tool_result, search_result, container_upload, future types
            self.text(block)

    def document(self, block: dict[str, Any], depth: int) -> None:
        self.text(block.get("title"))
        self.text(block.get("context"))
        source = block.get("source")
        source = source if isinstance(source, dict) else {}
        kind, data = source.get("type"), source.get("data")
        if kind == "text":
            self.text(data)
        elif kind == "content":
            self.content(source.get("content"), depth)
        elif kind == "base64" and isinstance(data, str):
            self.fixed += round(_remembered("pdf", data, _pdf_tokens))
        else:  # url, file
            self.fixed += PDF_UNKNOWN_PAGES * PDF_PAGE_TOKENS

    def tools(self, tools: list[Any], tool_choice: Any) -> None:
        choice = tool_choice.get("type") if isinstance(tool_choice, dict) else "auto"
        self.fixed += TOOL_PROMPT_TOKENS.get(str(choice), TOOL_PROMPT_TOKENS["auto"])
        if isinstance(tool_choice, dict):
            self.text(tool_choice.get("name"))
        for tool in tools:
            tool = tool if isinstance(tool, dict) else {"description": tool}
            if tool.get("type") in (None, "custom") or "input_schema" in tool:
                self.fixed += TOOL_TOKENS
                for key in ("name", "description", "input_schema"):
                    self.text(tool.get(key))
            else:  # e.g. {"type": "bash_20250124", "name": "bash"}, {"type": "web_search_20250305", ...}
                family = str(tool["type"]).rsplit("_", 1)[0]
                self.fixed += next((n for p, n in BUILTIN_TOOL_TOKENS.items() if family.startswith(p)), SERVER_TOOL_TOKENS)
        self.close()


_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str, skipkeys=True)


def _json(value: Any, split: bool = True) -> str:
    """JSON as a model sees it (non-JSON values as their str()); what cannot be encoded is skipped."""
    try:
        return _ENCODER.encode(value)
    except (ValueError, RecursionError):  # a cycle, absurd nesting, or an int past 4300 digits
        return "\n".join(_json(item, split=False) for item in value) if split and isinstance(value, list) else ""


# --- Text ---------------------------------------------------------------------------------
# One bytes.translate() turns UTF-8 into one byte per character holding its class bits.
# Read as one big integer, "starts a run of its class" is three whole-number operations,
# and bytes.count() does the rest: C speed throughout, no Python loop per character.
_LETTER, _DIGIT, _PUNCT, _BREAK, _SPACE, _BLANK, _WIDE2, _WIDE3 = (1 << bit for bit in range(8))
_WIDE4 = _WIDE2 | _WIDE3
_CONTINUATION = bytes(range(0x80, 0xC0))  # deleted: a multi-byte character becomes one byte


def _class_table() -> bytes:
    table = bytearray([_PUNCT]) * 256  # ASCII punctuation and control characters
    for byte in range(0x80):
        if chr(byte).isalpha():
            table[byte] = _LETTER
        elif chr(byte).isdigit():
            table[byte] = _DIGIT
    table[ord(" ")] = _SPACE | _BLANK
    for char in "\n\r\t\v\f":  # vocabularies merge these with the indentation after them
        table[ord(char)] = _BREAK | _BLANK
    table[0xC0:0xE0] = bytes([_WIDE2]) * 0x20  # 2-byte characters: accented Latin, Cyrillic, ...
    table[0xE0:0xF0] = bytes([_WIDE3]) * 0x10  # 3-byte: CJK, kana, Hangul, typographic punctuation
    table[0xF0:0x100] = bytes([_WIDE4]) * 0x10  # 4-byte: emoji, rare CJK
    return bytes(table)


_CLASSES = _class_table()
_LONG_WORD = bytes([_LETTER]) * 8
_LONG_NUMBER = bytes([_DIGIT]) * 3


def text_features(text: str) -> tuple[int, ...]:
    """What estimate_text_tokens weighs, counted (public so that calibration can fit weights).

    Runs of letters, digits, punctuation and line breaks: each is mostly one token, as
    byte-level BPE vocabularies hold whole common words and a space joins the word after
    it. Then runs of 2+ spaces that are not indentation, pieces of 8 letters and of 3
    digits (long words and numbers are split), and multi-byte characters.
    """
    classes = text.encode("utf-8", "surrogatepass").translate(_CLASSES, _CONTINUATION)
    size = len(classes) + 1
    bits = int.from_bytes(classes, "little")
    starts_int = bits ^ (bits & (bits << 8))  # the class bits the previous character lacks
    starts = starts_int.to_bytes(size, "little").translate(None, b"\0")  # shorter to count in
    # a space after a non-blank character and before another space: a gap, not indentation
    gaps = (starts_int & (bits >> 8)).to_bytes(size, "little").count(_SPACE | _BLANK)
    wide = not text.isascii()
    return (
        starts.count(_LETTER),
        starts.count(_DIGIT),
        starts.count(_PUNCT),
        starts.count(_BREAK | _BLANK) + starts.count(_BREAK),
        gaps,
        classes.count(_LONG_WORD),
        classes.count(_LONG_NUMBER),
        starts.count(_WIDE2) if wide else 0,
        classes.count(_WIDE2) if wide else 0,
        classes.count(_WIDE3) if wide else 0,
        classes.count(_WIDE4) if wide else 0,
    )


# Tokens per feature, in text_features' order. Fitted (least squares on relative error)
# against the Claude tokenizer on ~450 chunks of text that is not in the bench: Python,
# JavaScript, Markdown, JSON and JSON schemas, shell output, and man pages in 8 languages
# for the multi-byte weights. Latin-script languages other than English come out up to 25% low
# (their words split into more pieces). The 4-byte weight is an assumption: byte-level BPE
# spends 2-3 tokens on most emoji.
TEXT_WEIGHTS = (1.0, 1.0, 1.13, 0.92, 1.32, 0.62, 1.03, 2.68, 0.1, 1.12, 2.0)


def text_cost(text: str) -> float:
    """The text heuristic: byte-level BPE tokens of `text`, unrounded. Replace it to change it."""
    return sum(weight * feature for weight, feature in zip(TEXT_WEIGHTS, text_features(text)))


def estimate_text_tokens(text: str) -> int:
    """Approximate token count of `text` (0 only for the empty string)."""
    return max(1, round(_text_cost(text))) if text else 0


# Claude Code resends the whole history with every request, so costs of long texts and of
# PDFs are remembered by (length, hash): a new turn costs only its new messages, and a 5 MB
# PDF is decoded once. Short texts are cheaper to count than to look up. The bound is crude;
# one request refills what it needs.
_MEMO: dict[tuple[str, int, int], float] = {}
_MEMO_MIN_CHARS = 1024
_MEMO_MAX_ENTRIES = 4096


def _remembered(kind: str, data: str, cost: Callable[[str], float]) -> float:
    key = (kind, len(data), hash(data))
    value = _MEMO.get(key)
    if value is None:
        if len(_MEMO) >= _MEMO_MAX_ENTRIES:
            _MEMO.clear()
        value = _MEMO[key] = cost(data)
    return value


def _text_cost(text: str) -> float:
    return _remembered("text", text, text_cost) if len(text) >= _MEMO_MIN_CHARS else text_cost(text)


def _pdf_tokens(data: str) -> float:
    return (pdf_page_count(b64decode(data)) or PDF_UNKNOWN_PAGES) * PDF_PAGE_TOKENS

"""The requests `check --deep` sends, as Claude Code would send them to the gateway
(Anthropic Messages, streamed): each differs from the plain one in the one thing it
asks about, so a refusal names that thing. The gateway's translation turns them into
the provider's own (exchange.prepare). Pure.
"""

from __future__ import annotations

import base64
import struct
import zlib
from typing import Any

from modelmux.config.types import Credential, Provider
from modelmux.translate import model_lists
from modelmux.translate.registry import PROTOCOLS

Body = dict[str, Any]

PLAIN_TOKENS = 16
# Far above any model's output limit (Llama 4 Scout's 10M context included), far below
# 2**31: the refusal names the real limit ("max_tokens is too large: N. This model
# supports at most 16384 completion tokens"). An upstream that takes it answers "OK".
ABSURD_TOKENS = 100_000_000
# Anthropic's smallest thinking budget; max_tokens must exceed it, with room to answer.
THINKING_BUDGET = 1024
THINKING_TOKENS = THINKING_BUDGET + 256
TOOL_TOKENS = 256
# The colour and the word the attachments hold: an answer naming them was read.
COLOUR, COLOURS = "red", ("red", "crimson", "scarlet")
WORD = "PELICAN"
TOOLS = [
    {"name": "get_weather", "description": "The current weather in a city.",
     "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
    {"name": "get_time", "description": "The current local time in a city.",
     "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
]  # fmt: skip
# The requests, in the order sent; Chat asks two more questions of its first request.
STEPS = ["streamed answer", "output limit", "reasoning", "two tool calls", "tool results", "image", "PDF"]
CHAT_STEPS = STEPS[:1] + ["stream without stream_options", "the other max-tokens field"] + STEPS[1:]
RESULTS = {"get_weather": "18°C, sunny", "get_time": "14:05"}


def plan(provider: Provider, credential: Credential | None) -> list[str]:
    """The requests a deep check of `provider` may send, in order (a passthrough provider's: none)."""
    if provider.passthrough:
        return []
    listing = ["model list"] if model_lists.asks(credential) else []
    return listing + (CHAT_STEPS if asks_chat_questions(provider) else STEPS)


def asks_chat_questions(provider: Provider) -> bool:
    """Whether the first request is asked Chat Completions' two more questions: which
    max-tokens field the provider takes, and whether its usage needs stream_options. Its
    providers are those that take a `max_tokens_field`."""
    return "max_tokens_field" in PROTOCOLS[provider.protocol].shaping


def plain(max_tokens: int = PLAIN_TOKENS) -> Body:
    return _body([_text("Reply with the single word OK.")], max_tokens)


def thinking() -> Body:
    """Claude Code's thinking request: `thinking: enabled` with a budget (an effort,
    a thinkingConfig or a thinking block, as each translation says it)."""
    return {**_body([_text("What is 17 × 23? Answer with the number only.")], THINKING_TOKENS), **_THINKING}


def tools(think: bool) -> Body:
    """Two calls asked for in one turn, which a model that calls in parallel makes at
    once; with thinking when the model showed reasoning, so that the next turn asks
    whether it wants that reasoning back."""
    body = _body([_text("Call get_weather for Paris and get_time for Tokyo. Make both calls now, in this one "
                        "reply, before writing any text.")], THINKING_TOKENS if think else TOOL_TOKENS)
    body.update(tools=TOOLS, tool_choice={"type": "auto"})
    return {**body, **_THINKING} if think else body


def results(asked: Body, answer: dict[str, Any]) -> Body:
    """The next turn after `answer` (the calls, as Claude Code got them): the whole
    history sent back with a result for each call, as Claude Code sends it."""
    calls = [b for b in answer.get("content") or () if b.get("type") == "tool_use"]
    outcome = [{"type": "tool_result", "tool_use_id": c["id"], "content": RESULTS.get(c.get("name"), "done")}
               for c in calls]  # fmt: skip
    turns = [*asked["messages"], {"role": "assistant", "content": answer["content"]},
             {"role": "user", "content": outcome}]  # fmt: skip
    return {**asked, "messages": turns}


def image() -> Body:
    block = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": _b64(PNG)}}
    return _body([block, _text("What colour is this image? Answer with one word.")], PLAIN_TOKENS)


def document() -> Body:
    block = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": _b64(PDF)}}
    return _body([block, _text("What is the one word written in this document? Answer with that word.")], PLAIN_TOKENS)


_THINKING = {"thinking": {"type": "enabled", "budget_tokens": THINKING_BUDGET}}


def _body(content: list[dict[str, Any]], max_tokens: int) -> Body:
    return {"model": "", "max_tokens": max_tokens, "stream": True, "messages": [{"role": "user", "content": content}]}


def _text(text: str) -> dict[str, str]:
    return {"type": "text", "text": text}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _png(size: int, rgb: tuple[int, int, int]) -> bytes:
    """A solid `size`×`size` PNG (8-bit RGB), 80-odd bytes."""
    rows = b"".join(b"\x00" + bytes(rgb) * size for _ in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def _pdf(word: str) -> bytes:
    """A one-page PDF showing `word` in Helvetica, with a correct cross-reference table."""
    text = f"BT /F1 24 Tf 20 40 Td ({word}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 240 100] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, content in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, content)
    start = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, start)
    return bytes(out)


PNG = _png(16, (220, 20, 20))
PDF = _pdf(WORD)

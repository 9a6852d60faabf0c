"""An OpenAI Responses server, scripted on top of `upstream.Upstream`.

`upstream.reply = responses_like` makes the fake answer as OpenAI's `POST /v1/responses`
would (a whole `response` object, or its SSE events when the body asks for
`stream: true`), echoing the model it received. The builders below script any other
answer: reasoning items with summaries and encrypted content, function calls whose
arguments come in deltas, only in `.done`, or only in the finished item, incomplete
and failed responses, `error` events. Errors as HTTP answers have the same
`{"error": {...}}` form as Chat Completions' (openai_upstream.error_reply). At the end:
the routes.yaml and fixtures that put the real gateway in front of it.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from openai_upstream import (  # noqa: F401 (server: a fixture)
    CLIENT_KEY, client, error_reply, gateway_fixtures, is_models, json_reply, openai_like, server,
)
from upstream import Behaviour, Received, Stream

GREETING = "Hello from the fake Responses upstream."
ENCRYPTED = "gAAAAABo-fake-encrypted-reasoning=="
Item = dict[str, Any]
Arguments = Literal["deltas", "done", "item"]


def usage(input: int = 12, output: int = 7, cached: int = 0, reasoning: int = 0) -> dict[str, Any]:
    """Responses usage: `cached` is part of `input` (input_tokens_details.cached_tokens)."""
    return {"input_tokens": input, "input_tokens_details": {"cached_tokens": cached}, "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": reasoning}, "total_tokens": input + output}


USAGE = usage()


def message(text: str, id: str = "msg_1") -> Item:
    return {"id": id, "type": "message", "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}


def function_call(call_id: str, name: str, arguments: dict[str, Any] | str, id: str = "fc_1") -> Item:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments, separators=(",", ":"))
    return {"id": id, "type": "function_call", "status": "completed", "call_id": call_id, "name": name,
            "arguments": text}


def reasoning(*summary: str, encrypted: str | None = ENCRYPTED, id: str = "rs_1") -> Item:
    item: Item = {"id": id, "type": "reasoning", "summary": [{"type": "summary_text", "text": s} for s in summary]}
    if encrypted is not None:
        item["encrypted_content"] = encrypted
    return item


def response(output: list[Item], status: str = "completed", usage: dict[str, Any] | None = USAGE,
             model: str = "gpt-test", incomplete: str | None = None, error: dict[str, Any] | None = None) -> Item:
    """A whole `response` object, with the fields the openai SDK's Response type has."""
    return {
        "id": "resp_fake_1", "object": "response", "created_at": 1700000000, "status": status, "model": model,
        "output": output, "error": error, "incomplete_details": {"reason": incomplete} if incomplete else None,
        "instructions": None, "metadata": {}, "parallel_tool_calls": True, "temperature": 1.0, "top_p": 1.0,
        "tool_choice": "auto", "tools": [], "text": {"format": {"type": "text"}}, "truncation": "disabled",
        "usage": usage,
    }  # fmt: skip


def incomplete(output: list[Item], usage: dict[str, Any] | None = USAGE, model: str = "gpt-test") -> Item:
    """Cut short by max_output_tokens."""
    return response(output, "incomplete", usage, model, incomplete="max_output_tokens")


def failed(message: str, code: str = "server_error", model: str = "gpt-test") -> Item:
    return response([], "failed", None, model, error={"code": code, "message": message})


# -- streams ------------------------------------------------------------------------


def _halves(text: str) -> list[str]:
    half = len(text) // 2
    return [part for part in (text[:half], text[half:]) if part]


def item_events(item: Item, index: int, arguments: Arguments = "deltas") -> list[dict[str, Any]]:
    """The events OpenAI streams for one output item, from `output_item.added` to
    `output_item.done`. A function call's arguments come in two `.delta`s and `.done`
    ("deltas"), only in `function_call_arguments.done` ("done"), or only in the
    finished item ("item")."""
    at = {"item_id": item["id"], "output_index": index}
    if item["type"] == "reasoning":
        events: list[dict[str, Any]] = [{"type": "response.output_item.added", "output_index": index,
                                         "item": {"id": item["id"], "type": "reasoning", "summary": []}}]
        for n, part in enumerate(item["summary"]):
            events.append({"type": "response.reasoning_summary_part.added", **at, "summary_index": n,
                           "part": {"type": "summary_text", "text": ""}})
            events += [{"type": "response.reasoning_summary_text.delta", **at, "summary_index": n, "delta": piece}
                       for piece in _halves(part["text"])]
            events.append({"type": "response.reasoning_summary_text.done", **at, "summary_index": n, "text": part["text"]})
            events.append({"type": "response.reasoning_summary_part.done", **at, "summary_index": n, "part": part})
    elif item["type"] == "message":
        text = item["content"][0]["text"]
        words = text.split(" ")
        empty = {"type": "output_text", "text": "", "annotations": []}
        events = [
            {"type": "response.output_item.added", "output_index": index,
             "item": {**item, "status": "in_progress", "content": []}},
            {"type": "response.content_part.added", **at, "content_index": 0, "part": empty},
            *[{"type": "response.output_text.delta", **at, "content_index": 0,
               "delta": w + (" " if i < len(words) - 1 else "")} for i, w in enumerate(words) if text],
            {"type": "response.output_text.done", **at, "content_index": 0, "text": text},
            {"type": "response.content_part.done", **at, "content_index": 0, "part": item["content"][0]},
        ]  # fmt: skip
    else:
        events = [{"type": "response.output_item.added", "output_index": index,
                   "item": {**item, "status": "in_progress", "arguments": ""}}]
        if arguments == "deltas":
            events += [{"type": "response.function_call_arguments.delta", **at, "delta": piece}
                       for piece in _halves(item["arguments"])]
        if arguments in ("deltas", "done"):
            events.append({"type": "response.function_call_arguments.done", **at, "arguments": item["arguments"]})
    return events + [{"type": "response.output_item.done", "output_index": index, "item": item}]


def events(output: list[Item], final: Item | None = None, arguments: Arguments = "deltas",
           model: str = "gpt-test") -> list[dict[str, Any]]:
    """A whole stream: response.created, .in_progress, each item's events, then the
    terminal event for `final` (default: a completed response of `output`):
    response.completed, .incomplete or .failed by its status."""
    final = final or response(output, model=model)
    pending = {**response([], "in_progress", None, model)}
    out = [{"type": "response.created", "response": pending}, {"type": "response.in_progress", "response": pending}]
    for index, item in enumerate(output):
        out += item_events(item, index, arguments)
    terminal = {"completed": "response.completed", "incomplete": "response.incomplete", "failed": "response.failed"}
    return out + [{"type": terminal[final["status"]], "response": final}]


def error_event(message: str, code: str = "server_error") -> dict[str, Any]:
    """The stream's `error` event: code, message and param at the top level."""
    return {"type": "error", "code": code, "message": message, "param": None}


def sse(items: list[dict[str, Any] | str]) -> list[bytes]:
    """SSE pieces as OpenAI frames them, one per item: the type as the event name and in
    the data, and a sequence_number; a string is an SSE comment line. No [DONE]."""
    pieces = []
    for number, item in enumerate(items):
        if isinstance(item, str):
            pieces.append(f"{item}\n\n".encode())
            continue
        data = json.dumps({**item, "sequence_number": number}, ensure_ascii=False)
        pieces.append(f"event: {item['type']}\ndata: {data}\n\n".encode())
    return pieces


def streaming(*items: dict[str, Any] | str):
    """A reply that streams these events."""
    return lambda request: Stream(sse(list(items)))


def whole(body: Item):
    """A reply that answers `body` as JSON."""
    return lambda request: json_reply(body)


def is_responses(request: Received) -> bool:
    return request.method == "POST" and request.path.split("?")[0].endswith("/responses")


def responses_like(request: Received) -> Behaviour:
    """The default behaviour: a Responses answer echoing the model received; a Chat
    Completions request (the fallback provider) and the model list get openai_like's;
    anything else OpenAI's 404."""
    if request.path.split("?")[0].endswith("/chat/completions") or is_models(request):
        return openai_like(request)
    if not is_responses(request):
        return error_reply(404, f"Unknown request URL: {request.method} {request.path}", code="unknown_url")
    body = request.json()
    model = body.get("model", "gpt-test")
    if body.get("stream"):
        return Stream(sse(events([message(GREETING)], model=model)))
    return json_reply(response([message(GREETING)], model=model))


# The gateway's side: Responses providers of every shape, all pointing at one fake.
CODEX_KEY = "sk-codex-eeeeeeeeeeee5555"
POOL_KEYS = {"POOL_A_KEY": "sk-pool-aaaaaaaaaaaa-0001", "POOL_B_KEY": "sk-pool-bbbbbbbbbbbb-0002"}
CHAT_KEY = "sk-chat-ffffffffffff6666"
ROUTES_ENV = {"CODEX_KEY": CODEX_KEY, "CHAT_KEY": CHAT_KEY, **POOL_KEYS}
UPSTREAM_MODEL = "gpt-5.3-codex"


def routes_yaml(url: str) -> str:
    """`claude-*` → codex as gpt-5.3-codex; `xhigh-*` → the same with effort xhigh;
    `gpt-*` → codex as asked (NAME(EFFORT) names included); `pool-*` → two keys;
    `fall-*` → codex, then a Chat Completions provider; `plain-*` → no reasoning."""
    return f"""
providers:
  codex:
    protocol: openai-responses
    base_url: "{url}/v1"
    credentials: [{{label: codex-main, key: "${{CODEX_KEY}}"}}]
  pool:
    protocol: openai-responses
    base_url: "{url}/pool/v1"
    credentials: [{{label: pool-a, key: "${{POOL_A_KEY}}"}}, {{label: pool-b, key: "${{POOL_B_KEY}}"}}]
  chat:
    protocol: openai-chat
    base_url: "{url}/chat/v1"
    credentials: [{{label: chat-main, key: "${{CHAT_KEY}}"}}]
  plain:
    protocol: openai-responses
    base_url: "{url}/plain/v1"
    credentials: [{{label: plain-main, key: "${{CODEX_KEY}}"}}]
    reasoning_effort: false
    documents: false
routes:
  - {{match: "claude-*", provider: codex, model: {UPSTREAM_MODEL}}}
  - {{match: "xhigh-*", provider: codex, model: "{UPSTREAM_MODEL}(xhigh)"}}
  - {{match: "gpt-*", provider: codex}}
  - {{match: "pool-*", provider: pool, model: {UPSTREAM_MODEL}}}
  - {{match: "fall-*", provider: codex, model: {UPSTREAM_MODEL}, fallback: [{{provider: chat, model: gpt-test}}]}}
  - {{match: "plain-*", provider: plain, model: gpt-4.1}}
profiles:
  codex:
    slots: {{opus: "{UPSTREAM_MODEL}(xhigh)", sonnet: claude-sonnet-4-5, haiku: "gpt-5-mini(low)"}}
    providers: [codex, pool, chat, plain]
default: null
"""


# Fixtures for the gateway tests (and openai_upstream's `server`); a test module imports them by name.
gateway, fresh = gateway_fixtures("responses", routes_yaml, ROUTES_ENV, responses_like)

"""An OpenAI Chat Completions server, scripted on top of `upstream.Upstream`.

`upstream.reply = openai_like` makes the fake answer as an OpenAI-compatible server
would (a whole `chat.completion`, or `chat.completion.chunk` SSE when the body asks for
`stream: true`), echoing the model it received. The builders below let a test script
any other answer: odd chunk boundaries, keep-alive comments, a stream cut short, errors.
At the end: the routes.yaml and fixtures that put the real gateway in front of it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import anthropic
import httpx
import pytest
from gateway import Gateway
from upstream import Behaviour, Received, Reply, Stream, Upstream

GREETING = "Hello from the fake OpenAI upstream."
KEEPALIVE = ": keep-alive"  # an SSE comment, as OpenRouter and others send while a model thinks
USAGE = {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}


def usage(prompt: int = 12, completion: int = 7, cached: int | None = None) -> dict[str, Any]:
    """OpenAI usage; `cached` goes in `prompt_tokens_details.cached_tokens` (part of `prompt`)."""
    result: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                              "total_tokens": prompt + completion}
    if cached is not None:
        result["prompt_tokens_details"] = {"cached_tokens": cached}
    return result


def tool_call(id: str | None, name: str | None, arguments: str | dict[str, Any] | None,
              index: int | None = None) -> dict[str, Any]:
    """One `tool_calls` entry. A whole message's call has no `index`; a stream fragment does,
    and may leave out `id`/`name` (continuations) or `arguments`."""
    call: dict[str, Any] = {} if index is None else {"index": index}
    if id is not None:
        call["id"] = id
        call["type"] = "function"
    function: dict[str, Any] = {}
    if name is not None:
        function["name"] = name
    if arguments is not None:
        function["arguments"] = arguments if isinstance(arguments, str) else json.dumps(arguments)
    call["function"] = function
    return call


def completion(text: str | None = None, tool_calls: list[dict[str, Any]] | None = None,
               reasoning: str | None = None, finish: str | None = "stop",
               usage: dict[str, Any] | None = USAGE, model: str = "gpt-test",
               reasoning_field: str = "reasoning_content") -> dict[str, Any]:
    """A whole `chat.completion`. `reasoning_field` is `reasoning_content` (DeepSeek, Kimi,
    vLLM) or `reasoning` (OpenRouter, Ollama)."""
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if reasoning is not None:
        message[reasoning_field] = reasoning
    if tool_calls:
        message["tool_calls"] = tool_calls
    body: dict[str, Any] = {
        "id": "chatcmpl-fake-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None,
          usage: dict[str, Any] | None = None, choices: bool = True, model: str = "gpt-test") -> dict[str, Any]:
    """One `chat.completion.chunk`. `choices=False` gives the usage-only final chunk
    (`choices: []`) that `stream_options.include_usage` asks for."""
    body: dict[str, Any] = {
        "id": "chatcmpl-fake-1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": model,
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish, "logprobs": None}] if choices else [],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def sse(items: Iterable[dict[str, Any] | str], done: bool = True) -> list[bytes]:
    """SSE pieces, one per item: a dict is a `data: {json}` event, a string an SSE comment
    line (e.g. KEEPALIVE). `done` appends `data: [DONE]`. Each piece is one write of a
    `Stream`, so `Stream(sse(...), delays=[...])` can hold any event back."""
    pieces = [
        (f"{item}\n\n" if isinstance(item, str) else f"data: {json.dumps(item, ensure_ascii=False)}\n\n").encode()
        for item in items
    ]
    if done:
        pieces.append(b"data: [DONE]\n\n")
    return pieces


def text_chunks(text: str = GREETING, finish: str = "stop", usage: dict[str, Any] | None = USAGE,
                model: str = "gpt-test", reasoning: str | None = None) -> list[dict[str, Any]]:
    """How OpenAI streams a text answer: a role chunk, one chunk per word (after the
    reasoning, if any), a finish chunk, then the usage-only chunk."""
    words = text.split(" ")
    chunks = [chunk({"role": "assistant", "content": ""}, model=model)]
    if reasoning is not None:
        chunks += [chunk({"reasoning_content": part}, model=model) for part in _halves(reasoning)]
    chunks += [chunk({"content": w + (" " if i < len(words) - 1 else "")}, model=model) for i, w in enumerate(words)]
    chunks.append(chunk({}, finish=finish, model=model))
    if usage is not None:
        chunks.append(chunk(usage=usage, choices=False, model=model))
    return chunks


def tool_call_chunks(id: str, name: str, arguments: dict[str, Any], model: str = "gpt-test",
                     usage: dict[str, Any] | None = USAGE, reasoning: str | None = None) -> list[dict[str, Any]]:
    """How OpenAI streams one tool call: id and name first, the arguments in two fragments."""
    text = json.dumps(arguments)
    chunks = [chunk({"role": "assistant", "content": None}, model=model)]
    if reasoning is not None:
        chunks += [chunk({"reasoning_content": part}, model=model) for part in _halves(reasoning)]
    chunks.append(chunk({"tool_calls": [tool_call(id, name, "", index=0)]}, model=model))
    chunks += [chunk({"tool_calls": [tool_call(None, None, part, index=0)]}, model=model) for part in _halves(text)]
    chunks.append(chunk({}, finish="tool_calls", model=model))
    if usage is not None:
        chunks.append(chunk(usage=usage, choices=False, model=model))
    return chunks


def _halves(text: str) -> list[str]:
    half = len(text) // 2
    return [part for part in (text[:half], text[half:]) if part]


def error(message: str, type: str = "invalid_request_error", code: str | None = None) -> dict[str, Any]:
    """OpenAI's error object, as a body and as a mid-stream `data:` event."""
    return {"error": {"message": message, "type": type, "param": None, "code": code}}


def error_reply(status: int, message: str, type: str = "invalid_request_error", code: str | None = None,
                headers: dict[str, str] | None = None) -> Reply:
    return Reply(status=status, body=json.dumps(error(message, type, code)).encode(),
                 headers={"content-type": "application/json", **(headers or {})})


def json_reply(body: dict[str, Any]) -> Reply:
    return Reply(body=json.dumps(body, ensure_ascii=False).encode())


# What the fake's GET /models lists: as OpenAI's, more than chat models.
MODELS = ["text-embedding-3-small", "gpt-test", "gpt-5.3-codex", "o-test"]


def models_reply(request: Received) -> Reply:
    """OpenAI's GET /models; a 401 without a key, as OpenAI answers."""
    if not request.headers.get("authorization", "").removeprefix("Bearer ").strip():
        return error_reply(401, "You didn't provide an API key. You need to provide your API key in an "
                                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
    return json_reply({"object": "list", "data": [
        {"id": m, "object": "model", "created": 1700000000, "owned_by": "system"} for m in MODELS]})


def is_models(request: Received) -> bool:
    return request.method == "GET" and request.path.split("?")[0].endswith("/models")


def openai_like(request: Received) -> Behaviour:
    """The default behaviour: answer like an OpenAI server, echoing the model received;
    GET .../models lists MODELS. Any other path gets OpenAI's 404."""
    if is_models(request):
        return models_reply(request)
    if request.method != "POST" or not request.path.split("?")[0].endswith("/chat/completions"):
        return error_reply(404, f"Unknown request URL: {request.method} {request.path}", code="unknown_url")
    body = request.json()
    model = body.get("model", "gpt-test")
    if body.get("stream"):
        include_usage = (body.get("stream_options") or {}).get("include_usage")
        return Stream(sse(text_chunks(model=model, usage=USAGE if include_usage else None)))
    return json_reply(completion(GREETING, model=model))


# The gateway's side: providers of every shape, all pointing at one fake, told apart by path.
OAI_KEY = "sk-oai-cccccccccccc3333"
AZURE_KEY = "az-dddddddddddd4444"
CLIENT_KEY = "sk-ant-api03-client-key-never-upstream"
ROUTES_ENV = {"OAI_KEY": OAI_KEY, "AZURE_KEY": AZURE_KEY}


def routes_yaml(url: str) -> str:
    """`claude-*` → plain OpenAI (gpt-test); `reasoner-*` → a reasoning model with every
    request option set (o-test); `azure-*` → an Azure deployment; `textonly-*` → no images."""
    return f"""
providers:
  oai:
    protocol: openai-chat
    base_url: "{url}/v1"
    credentials: [{{label: oai-main, key: "${{OAI_KEY}}"}}]
  reasoner:
    protocol: openai-chat
    base_url: "{url}/reasoner/v1"
    credentials: [{{label: reasoner-main, key: "${{OAI_KEY}}"}}]
    max_tokens_field: max_completion_tokens
    max_tokens_limit: 4096
    drop_fields: [temperature]
    reasoning_effort: true
    reasoning_history: true
  azure:
    protocol: openai-chat
    base_url: "{url}/openai"
    auth: "api-key: {{key}}"
    credentials: [{{label: azure-main, key: "${{AZURE_KEY}}"}}]
    endpoint: "/deployments/{{model}}/chat/completions"
    query: {{api-version: "2024-10-21"}}
  textonly:
    protocol: openai-chat
    base_url: "{url}/textonly/v1"
    credentials: [{{label: textonly-main, key: "${{OAI_KEY}}"}}]
    images: false
routes:
  - {{match: "claude-*", provider: oai, model: gpt-test}}
  - {{match: "reasoner-*", provider: reasoner, model: o-test}}
  - {{match: "azure-*", provider: azure, model: my-deployment}}
  - {{match: "textonly-*", provider: textonly, model: text-model}}
profiles:
  openai: {{slots: {{sonnet: claude-sonnet-4-5}}, providers: [oai, reasoner, azure, textonly]}}
default: null
"""


# Fixtures for the gateway tests; a test module imports them by name to use them.
@pytest.fixture(scope="module")
def server() -> Iterator[Upstream]:
    with Upstream() as fake:
        yield fake


def gateway_fixtures(name: str, routes: Callable[[str], str], env: dict[str, str],
                     reply: Callable[[Received], Behaviour],
                     make: Callable[..., Gateway] = Gateway) -> tuple[Any, Any]:
    """The `gateway` (module-scoped, in front of `server`, routes.yaml from `routes(url)`)
    and autouse `fresh` fixtures of one fake's gateway tests; the fake's module binds
    them to those names. A test module may set GATEWAY_ARGS (mitmdump options); `make`
    builds the gateway from Gateway's arguments and the `server` keyword."""

    @pytest.fixture(scope="module")
    def gateway(server: Upstream, tmp_path_factory: pytest.TempPathFactory,
                request: pytest.FixtureRequest) -> Iterator[Gateway]:
        extra = getattr(request.module, "GATEWAY_ARGS", None)
        built = make(tmp_path_factory.mktemp(name), routes(server.url), env, extra,
                     **({"server": server} if make is not Gateway else {}))
        with built as gw:
            yield gw

    @pytest.fixture(autouse=True)
    def fresh(server: Upstream, gateway: Gateway) -> None:
        gateway.reset_credentials()
        server.received.clear()
        server.reply = reply
        server.gate = None

    return gateway, fresh


gateway, fresh = gateway_fixtures("openai", routes_yaml, ROUTES_ENV, openai_like)


def client(gateway: Gateway, **headers: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=CLIENT_KEY, default_headers=headers, max_retries=0)


def check_error_answer(gateway: Gateway, server: Upstream, model: str, status: int, error_type: str,
                       stream: bool) -> None:
    """The upstream answers an OpenAI error body (with Retry-After on a 429): the client gets
    the same status and an Anthropic error of `error_type` that quotes the upstream."""
    message = f"upstream refused with {status}: quota for {model}"
    server.reply = lambda r: error_reply(status, message, headers={"retry-after": "7"} if status == 429 else {})
    response = httpx.post(f"{gateway.url}/v1/messages", headers={"x-api-key": CLIENT_KEY}, timeout=30,
                          json={"model": model, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}],
                                "stream": stream})
    assert response.status_code == status
    body = response.json()
    assert list(body) == ["type", "error"] and body["type"] == "error"
    assert body["error"]["type"] == error_type and message in body["error"]["message"], body
    if status == 429:
        assert response.headers["retry-after"] == "7"

"""Providers with `auth: none` (Ollama, vLLM, LM Studio, llama.cpp) behind the real
gateway: what they receive carries no credential at all, whichever the client sent
and whichever way the request is sent (by mitmproxy itself, or by the failover relay);
their refusals and their absence reach the client as Anthropic errors naming them."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from gateway import Gateway
from openai_upstream import GREETING as CHAT_GREETING, error_reply, gateway_fixtures, server  # noqa: F401 (server: a fixture)
from responses_upstream import GREETING as RESPONSES_GREETING, responses_like
from upstream import Behaviour, Received, Upstream, anthropic_like

import gemini_upstream as gemini
from modelmux.headers import PLACEHOLDER_TOKEN

PAID_KEY = "sk-paid-aaaaaaaaaaaa1111"
CLIENT_KEY = "sk-ant-api03-the-users-own-key-bbbbbbbb2222"  # a real-looking Anthropic API key
CLIENTS = {  # what the client sends as its token: its own Anthropic key, or the launcher's placeholder
    "own key": {"x-api-key": CLIENT_KEY},
    "placeholder": {"authorization": f"Bearer {PLACEHOLDER_TOKEN}"},
}
CREDENTIAL_HEADERS = ("authorization", "x-api-key", "x-goog-api-key")
# Ollama not running: a port held bound but never listening, so connecting is refused
# and nothing else can take it meanwhile (a free port given back was taken by another
# gateway on a busy machine, which answered 404).
_DOWN = socket.socket()
_DOWN.bind(("127.0.0.1", 0))
DOWN_PORT = _DOWN.getsockname()[1]

# Each keyless provider by protocol: its name, its upstream model, and the answer's text.
KEYLESS = {
    "openai-chat": ("ollama", "qwen3", CHAT_GREETING),
    "openai-responses": ("lmstudio", "gpt-oss-20b", RESPONSES_GREETING),
    "anthropic": ("llamacpp", "qwen3-coder", "Hello from the fake upstream."),
    "gemini": ("gemma", "gemma-3", gemini.GREETING),
}


def routes_yaml(url: str) -> str:
    """`PROTOCOL` → that protocol's keyless provider alone (sent by mitmproxy);
    `rescue-PROTOCOL` → a keyed provider, then the keyless one as its fallback (the relay);
    `local-chain` → one keyless provider falling back to another; `down`, `down-chain`
    → a keyless provider nothing listens for, alone and with a fallback."""
    routes = [f"  - {{match: {protocol}, provider: {name}, model: {model}}}"
              for protocol, (name, model, _) in KEYLESS.items()]
    routes += [f"  - {{match: rescue-{protocol}, provider: paid, model: gpt-test, "
               f"fallback: [{{provider: {name}, model: {model}}}]}}" for protocol, (name, model, _) in KEYLESS.items()]
    return f"""
providers:
  ollama: {{protocol: openai-chat, base_url: "{url}/ollama/v1", auth: none, models: [qwen3]}}
  lmstudio: {{protocol: openai-responses, base_url: "{url}/lmstudio/v1", auth: none}}
  llamacpp: {{protocol: anthropic, base_url: "{url}", auth: none}}
  gemma: {{protocol: gemini, base_url: "{url}/v1beta", auth: none}}
  down: {{protocol: openai-chat, base_url: "http://127.0.0.1:{DOWN_PORT}/v1", auth: none}}
  paid:
    protocol: openai-chat
    base_url: "{url}/paid/v1"
    credentials: [{{label: paid-main, key: "${{PAID_KEY}}"}}]
routes:
{chr(10).join(routes)}
  - {{match: local-chain, provider: ollama, model: qwen3, fallback: [{{provider: lmstudio, model: gpt-oss-20b}}]}}
  - {{match: down, provider: down, model: qwen3}}
  - {{match: down-chain, provider: down, model: qwen3, fallback: [{{provider: ollama, model: qwen3}}]}}
default: null
"""


def local_like(request: Received) -> Behaviour:
    """Answers as each local server would, told apart by path; none asks for a key."""
    if request.path.startswith("/v1/messages"):
        return anthropic_like(request)
    if model := gemini.model_of(request):
        if gemini.streamed(request):
            return gemini.Stream(gemini.sse(gemini.chunks(gemini.text(gemini.GREETING), model=model)))
        return gemini.json_reply(gemini.response(gemini.text(gemini.GREETING), model=model))
    return responses_like(request)  # Chat Completions too


def failing(prefix: str, status: int, message: str) -> Any:
    """A gate: requests under `prefix` get an OpenAI error (a server's, which fails over);
    the rest answer as usual."""
    return lambda request: error_reply(status, message, "server_error") if request.path.startswith(prefix) else None


fresh = gateway_fixtures("keyless", routes_yaml, {}, local_like)[1]  # resets the gateway below before each test


@pytest.fixture(scope="module")
def gateway(server: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with Gateway(tmp_path_factory.mktemp("keyless"), routes_yaml(server.url), {"PAID_KEY": PAID_KEY}) as gw:
        yield gw
    log = gw.log.read_text()  # complete: the gateway has exited
    assert CLIENT_KEY not in log and PAID_KEY not in log


def post(gateway: Gateway, model: str, client: str, stream: bool) -> httpx.Response:
    body = {"model": model, "max_tokens": 64, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"anthropic-version": "2023-06-01", **CLIENTS[client]}
    return httpx.post(f"{gateway.url}/v1/messages", json=body, headers=headers, timeout=30)


def model_of(received: Received) -> str:
    """The upstream model a request asked for: Gemini names it in the path."""
    return gemini.model_of(received) or received.json()["model"]


def check_no_credential(received: Received) -> None:
    """Not one credential header, and nothing of the client's token or the paid key anywhere."""
    assert not set(CREDENTIAL_HEADERS) & received.headers.keys(), received.headers
    sent = json.dumps(received.headers) + received.path + received.body.decode()
    for secret in (CLIENT_KEY, PLACEHOLDER_TOKEN, PAID_KEY, "Bearer"):
        assert secret not in sent, (secret, received)


def check_answer(response: httpx.Response, model: str, text: str, stream: bool, protocol: str) -> None:
    """The exact answer: the message (its id aside), or the stream's events in order."""
    assert response.status_code == 200, response.text
    if not stream:
        assert response.headers["content-type"] == "application/json"
        message = {"id": "-", "type": "message", "role": "assistant", "model": model,
                   "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
                   "usage": {"input_tokens": 12, "output_tokens": 7}}  # the fake Anthropic's, passed as it is
        if protocol != "anthropic":  # a translated answer has every field Anthropic's specification requires
            message.update(content=[{"type": "text", "text": text, "citations": None}], stop_details=None, container=None)
            message["usage"].update(cache_read_input_tokens=0, cache_creation_input_tokens=0, cache_creation=None,
                                    server_tool_use=None, service_tier=None, inference_geo=None,
                                    # the Responses fake counts its (no) reasoning tokens
                                    output_tokens_details={"thinking_tokens": 0} if protocol == "openai-responses" else None)
        assert {**response.json(), "id": "-"} == message
        return
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]
    events = [e for e in events if e["type"] != "ping"]
    deltas = [e for e in events if e["type"] == "content_block_delta"]
    assert [e["type"] for e in events] == ["message_start", "content_block_start", *["content_block_delta"] * len(deltas),
                                           "content_block_stop", "message_delta", "message_stop"]
    assert events[0]["message"]["model"] == model
    assert "".join(e["delta"]["text"] for e in deltas) == text
    assert events[-2]["delta"]["stop_reason"] == "end_turn"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("protocol", KEYLESS)
def test_sent_by_mitmproxy_without_any_credential(gateway, server, protocol, client, stream):
    name, model, text = KEYLESS[protocol]
    check_answer(post(gateway, protocol, client, stream), protocol, text, stream, protocol)
    [received] = server.received
    assert model_of(received) == model
    check_no_credential(received)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("protocol", KEYLESS)
def test_the_fallback_of_a_failing_keyed_provider_gets_no_credential(gateway, server, protocol, client, stream):
    """Only the relay fails over: the keyed provider's 503 is followed by the keyless one,
    whose request carries neither the client's token nor the key the first one got."""
    server.gate = failing("/paid/", 503, "overloaded")
    name, model, text = KEYLESS[protocol]
    check_answer(post(gateway, f"rescue-{protocol}", client, stream), f"rescue-{protocol}", text, stream, protocol)
    paid, keyless = server.received
    assert paid.path == "/paid/v1/chat/completions"
    assert paid.headers["authorization"] == f"Bearer {PAID_KEY}" and "x-api-key" not in paid.headers
    assert model_of(keyless) == model
    check_no_credential(keyless)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("client", CLIENTS)
def test_a_keyless_provider_falls_back_to_another(gateway, server, client, stream):
    server.gate = failing("/ollama/", 503, "model is loading")
    check_answer(post(gateway, "local-chain", client, stream), "local-chain", RESPONSES_GREETING, stream,
                 "openai-responses")
    assert [r.path for r in server.received] == ["/ollama/v1/chat/completions", "/lmstudio/v1/responses"]
    for received in server.received:
        check_no_credential(received)


def test_a_keyless_provider_that_wants_a_key_is_named_and_cools_nothing(gateway, server):
    """A server started with a key (vLLM --api-key) answers 401: the client hears which
    provider, that it was sent none, and what to configure; no credential cools down."""
    server.gate = failing("/ollama/", 401, "Unauthorized: invalid or missing api key")
    for stream in (False, True):
        response = post(gateway, "openai-chat", "own key", stream)
        assert response.status_code == 401
        assert response.json() == {"type": "error", "error": {"type": "authentication_error", "message": (
            f"provider 'ollama' ({server.url}/ollama/v1) answered HTTP 401: Unauthorized: invalid or missing api "
            "key. routes.yaml sends it no credential (auth: none); if it needs a key, replace `auth: none` with "
            "`credentials:` holding a `key:` (sent as 'Authorization: Bearer {key}')")}}  # fmt: skip
    before = gateway.credentials()
    server.gate = failing("/", 403, "forbidden")  # the keyed provider too, then its keyless fallback
    response = post(gateway, "rescue-openai-responses", "placeholder", False)
    assert response.status_code == 503, response.text
    assert response.json()["error"]["message"].startswith(  # then when the paid key recovers
        "no upstream could serve model 'rescue-openai-responses' (2 attempts): paid/paid-main 403; "
        "lmstudio/no credential 403; the first recovers at ")
    after = gateway.credentials()
    assert list(after["providers"]) == ["paid"]  # the only pool: a keyless provider has none
    assert after["without_credentials"] == {
        "ollama": "none", "lmstudio": "none", "llamacpp": "none", "gemma": "none", "down": "none"}
    [paid_before], [paid] = before["providers"]["paid"]["credentials"], after["providers"]["paid"]["credentials"]
    assert (paid["requests"] - paid_before["requests"], paid["errors"] - paid_before["errors"]) == (1, 1)
    assert [c["status"] for c in paid["cooldowns"]] == [403]  # the keyed provider's own refusal


def test_every_keyless_provider_refusing_is_summed_up_by_name(gateway, server):
    server.gate = failing("/", 401, "no")
    response = post(gateway, "local-chain", "own key", True)
    assert response.status_code == 503
    assert response.json() == {"type": "error", "error": {"type": "overloaded_error", "message": (
        "no upstream could serve model 'local-chain' (2 attempts): ollama/no credential 401; "
        "lmstudio/no credential 401")}}  # fmt: skip


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_local_server_that_is_not_running_is_named(gateway, server, stream):
    response = post(gateway, "down", "placeholder", stream)
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/json"
    error = response.json()
    assert list(error) == ["type", "error"] and error["type"] == "error" and error["error"]["type"] == "api_error"
    assert error["error"]["message"].startswith(f"provider 'down' (http://127.0.0.1:{DOWN_PORT}) cannot be connected to: ")
    assert "Connect call failed" in error["error"]["message"]
    assert server.received == []


def test_a_local_server_that_is_not_running_is_failed_over(gateway, server):
    check_answer(post(gateway, "down-chain", "own key", True), "down-chain", CHAT_GREETING, True, "openai-chat")
    [received] = server.received
    check_no_credential(received)
    server.gate = failing("/ollama/", 503, "busy")
    response = post(gateway, "down-chain", "own key", False)
    assert response.status_code == 503
    # A host error earns the request a second round (credentials.md, Retries and failover);
    # a server that cannot be connected to does not.
    assert response.json()["error"]["message"] == (
        "no upstream could serve model 'down-chain' (3 attempts): down/no credential connect; "
        "ollama/no credential 503; ollama/no credential 503")


def test_count_tokens_and_the_local_endpoints(gateway, server):
    """count_tokens of a keyless anthropic provider goes upstream without a credential;
    /v1/models lists a keyless provider's models like any other's."""
    response = httpx.post(f"{gateway.url}/v1/messages/count_tokens", headers=CLIENTS["placeholder"], timeout=10,
                          json={"model": "anthropic", "messages": [{"role": "user", "content": "hi"}]})
    assert (response.status_code, response.json()) == (200, {"input_tokens": 42})
    [received] = server.received
    assert received.path == "/v1/messages/count_tokens"
    check_no_credential(received)
    models = httpx.get(f"{gateway.url}/v1/models", timeout=10).json()
    assert "qwen3" in [m["id"] for m in models["data"]]
    assert "ollama" in gateway.health()["config"]["providers"]

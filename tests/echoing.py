"""A fake upstream that echoes every header it was sent, in its answer's headers and in
its body, as whichever protocol was asked (known by the path): what an upstream quoting
the key it rejected does, at its worst. In front of it, a gateway with a route of each
protocol on each send path: `PROTOCOL-solo` (one key, or passthrough without fallback:
mitmproxy sends it) and `PROTOCOL-pool` (two keys, or a passthrough with a fallback: the
failover relay). Every secret is distinctive, so a test finds any echo of it."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import httpx
from gemini_upstream import chunks as gemini_chunks
from gemini_upstream import response as gemini_response
from gemini_upstream import sse as gemini_sse
from gemini_upstream import text as gemini_text
from openai_upstream import completion, text_chunks
from openai_upstream import sse as openai_sse
from responses_upstream import events as responses_events
from responses_upstream import message as responses_message
from responses_upstream import response as responses_response
from responses_upstream import sse as responses_sse
from upstream import Behaviour, Received, Reply, Stream, message, message_events

from modelmux.headers import CREDENTIAL_HEADERS

TARGETS = ["chat", "resp", "gem", "vend", "pass"]  # pass: Anthropic passthrough (the client's own token)
PATHS = ["solo", "pool"]
PROTOCOLS = {"chat": "openai-chat", "resp": "openai-responses", "gem": "gemini", "vend": "anthropic"}
MODELS = {"chat": "gpt-test", "resp": "gpt-5.3-codex", "gem": "gemini-2.5-flash", "vend": "glm-4.6"}
KEYS = {f"{t}-{label}": f"sk-echo-{t}-{label}-provider-key-{n:04d}"
        for n, (t, label) in enumerate((t, lab) for t in PROTOCOLS for lab in ("solo", "a", "b"))}
ENV = {name.replace("-", "_").upper(): key for name, key in KEYS.items()}
# The client's tokens: Claude Code's login and API key, and keys a client written for
# another service puts in that service's header.
CLIENT_TOKENS = {
    "authorization": "sk-ant-oat01-client-login-token-1111",
    "x-api-key": "sk-ant-api03-client-api-key-2222",
    "x-goog-api-key": "AIzaClient-google-key-aaaaaaaaaaaaa3333",
    "api-key": "client-azure-openai-key-4444",
}
# What Claude Code sends besides its token (its SDK's headers as of Claude Code 2.x).
CLAUDE_CODE_HEADERS = {
    "accept": "application/json",
    "anthropic-version": "2023-06-01",
    "anthropic-beta": "claude-code-20250219,oauth-2025-04-20,interleaved-thinking-2025-05-14",
    "anthropic-dangerous-direct-browser-access": "true",
    "user-agent": "claude-cli/2.1.0 (external, cli)",
    "x-app": "cli",
    "x-claude-code-session-id": "5f0c2a52-session-id-of-the-client",
    "x-stainless-lang": "js",
    "x-stainless-package-version": "0.60.0",
    "x-stainless-os": "Linux",
    "x-stainless-arch": "x64",
    "x-stainless-runtime": "node",
    "x-stainless-runtime-version": "v22.0.0",
    "x-stainless-retry-count": "0",
    "x-stainless-timeout": "600",
    "x-project": "a-custom-header-of-the-user",
}
SECRETS = [*KEYS.values(), *CLIENT_TOKENS.values()]


def client_headers() -> dict[str, str]:
    return {**CLAUDE_CODE_HEADERS, **{name: value for name, value in CLIENT_TOKENS.items() if name != "authorization"},
            "authorization": f"Bearer {CLIENT_TOKENS['authorization']}"}


def routes_yaml(url: str) -> str:
    def key(name: str) -> str:
        return f"{{label: {name.split('-')[1]}, key: '${{{name.replace('-', '_').upper()}}}'}}"

    bases = {"chat": f"{url}/v1", "resp": f"{url}/v1", "gem": f"{url}/v1beta", "vend": url}
    providers = "".join(
        f"  {t}-{path}:\n    protocol: {protocol}\n    base_url: \"{bases[t]}\"\n"
        f"    credentials: [{', '.join(key(f'{t}-{label}') for label in (['solo'] if path == 'solo' else ['a', 'b']))}]\n"
        for t, protocol in PROTOCOLS.items() for path in PATHS)
    providers += (f"  pass-solo: {{protocol: anthropic, base_url: \"{url}/pass\", auth: passthrough}}\n"
                  f"  pass-fallback: {{protocol: anthropic, base_url: \"{url}/pass\", auth: passthrough}}\n")
    routes = "".join(f"  - {{match: \"{t}-{path}\", provider: {t}-{path}, model: {MODELS[t]}}}\n"
                     for t in PROTOCOLS for path in PATHS)
    routes += ("  - {match: \"pass-solo\", provider: pass-solo}\n"
               "  - {match: \"pass-pool\", provider: pass-solo, fallback: [pass-fallback]}\n")
    return f"providers:\n{providers}routes:\n{routes}default: null\n"


def protocol_of(request: Received) -> str:
    """Which protocol a request speaks, by its path wherever its base URL put it."""
    path = request.path.split("?")[0]
    if path.endswith(":generateContent") or path.endswith(":streamGenerateContent"):
        return "gemini"
    if path.endswith("/chat/completions"):
        return "openai-chat"
    return "openai-responses" if path.endswith("/responses") else "anthropic"


def model_of(request: Received) -> str:
    """The model a request names: in its body, or Gemini's in its path ("" for none)."""
    if found := re.search(r"/models/([^/:?]+):", request.path):
        return found.group(1)
    try:
        return str(request.json().get("model", ""))
    except (ValueError, AttributeError):
        return ""


def what_it_got(request: Received) -> str:
    """Every header and the request line, as an echoing upstream quotes them: credential
    headers first, then custom ones, so that a quote cut short (as logs keep it) still
    holds them."""
    def order(name: str) -> int:
        return 0 if name in CREDENTIAL_HEADERS else 1 if name.startswith("x-") else 2

    headers = sorted(request.headers.items(), key=lambda item: order(item[0]))
    return "; ".join([*(f"{name}: {value}" for name, value in headers), f"{request.method} {request.path}"])


def echoed(request: Received, status: int, stream: bool = False) -> Behaviour:
    """An answer of the request's protocol that echoes what it got, in its headers
    (`x-echo-NAME`) and its text: an error with `status` >= 400, else a whole answer or,
    with `stream`, the protocol's stream (one event a word, so each value whole)."""
    said = what_it_got(request)
    headers = {f"x-echo-{n}": v for n, v in request.headers.items()}
    protocol = protocol_of(request)
    if status >= 400:
        body = {"type": "error", "error": {"type": "invalid_request_error", "message": said,
                                           "code": status, "status": "INVALID_ARGUMENT"}}
        return Reply(status, json.dumps(body).encode(), {"content-type": "application/json", **headers})
    if request.path.split("?")[0].endswith("/count_tokens"):
        return Reply(status, json.dumps({"input_tokens": 42, "echo": said}).encode(),
                     {"content-type": "application/json", **headers})
    model = model_of(request)
    if stream:
        pieces = {"openai-chat": lambda: openai_sse(text_chunks(said, model=model)),
                  "openai-responses": lambda: responses_sse(responses_events([responses_message(said)], model=model)),
                  "gemini": lambda: gemini_sse(gemini_chunks(gemini_text(said), model=model)),
                  "anthropic": lambda: message_events(model, said)}[protocol]()
        return Stream(pieces, headers={"content-type": "text/event-stream", **headers})
    body = {"openai-chat": lambda: completion(said),
            "openai-responses": lambda: responses_response([responses_message(said)]),
            "gemini": lambda: gemini_response(gemini_text(said)),
            "anthropic": lambda: message(model, said)}[protocol]()
    return Reply(status, json.dumps(body).encode(), {"content-type": "application/json", **headers})


def echo(status: int) -> Callable[[Received], Behaviour]:
    """A reply: every header received, in the answer's headers and its text (an answer
    of the request's protocol with status 200, else an error); always whole."""
    return lambda request: echoed(request, status)


def post(url: str, target: str, path: str, headers: dict[str, str] | None = None, stream: bool = False) -> httpx.Response:
    body = {"model": f"{target}-{path}", "max_tokens": 64, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
    return httpx.post(f"{url}/v1/messages", json=body, headers=client_headers() if headers is None else headers,
                      timeout=15)


def leaked(response: httpx.Response) -> list[str]:
    """Every secret found in what the client got: its headers and its body."""
    text = response.text + "\n".join(f"{n}: {v}" for n, v in response.headers.multi_items())
    return [secret for secret in SECRETS if secret in text]

"""A gateway where every protocol has a route of each send path: `PROTOCOL-solo` (one
key: mitmproxy sends it) and `PROTOCOL-pool` (two keys: the failover relay sends it),
all on one fake upstream that answers as the protocol of the key it was sent. A test
scripts the first request's answer (`first`); any later one is answered normally, so
a pool shows whether its first attempt counted as failed (the second key answers)."""

from __future__ import annotations

import json
import re
import threading
from typing import Any

import httpx
from gateway import Gateway
from gemini_upstream import gemini_like
from openai_upstream import gateway_fixtures, openai_like, server  # noqa: F401 (server: a fixture)
from responses_upstream import responses_like
from upstream import Behaviour, Received, Upstream, anthropic_like

PROTOCOLS = {"chat": "openai-chat", "resp": "openai-responses", "gem": "gemini", "vend": "anthropic"}
PATHS = ["solo", "pool"]  # mitmproxy's own path, the failover relay
NORMAL = {"chat": openai_like, "resp": responses_like, "gem": gemini_like, "vend": anthropic_like}
KEYS = {f"{short}-{label}": f"sk-{short}-{label}-{'x' * 16}-{n:04d}"
        for n, (short, label) in enumerate((s, lab) for s in PROTOCOLS for lab in ("solo", "a", "b"))}
ENV = {name.replace("-", "_").upper(): key for name, key in KEYS.items()}
MODELS = {"chat": "gpt-test", "resp": "gpt-5.3-codex", "gem": "gemini-2.5-flash", "vend": "glm-4.6"}


def routes_yaml(url: str) -> str:
    def key(name: str) -> str:
        return f"{{label: {name.split('-')[1]}, key: '${{{name.replace('-', '_').upper()}}}'}}"

    bases = {"chat": f"{url}/v1", "resp": f"{url}/v1", "gem": f"{url}/v1beta", "vend": url}
    def labels(path: str) -> list[str]:
        return ["solo"] if path == "solo" else ["a", "b"]

    providers = "".join(
        f"  {short}-{path}:\n    protocol: {protocol}\n    base_url: \"{bases[short]}\"\n"
        f"    credentials: [{', '.join(key(f'{short}-{label}') for label in labels(path))}]\n"
        for short, protocol in PROTOCOLS.items() for path in PATHS)
    routes = "".join(f"  - {{match: \"{short}-{path}\", provider: {short}-{path}, model: {MODELS[short]}}}\n"
                     for short in PROTOCOLS for path in PATHS)
    return f"providers:\n{providers}routes:\n{routes}default: null\n"


def key_of(request: Received) -> str:
    """The name (`chat-solo`, `gem-a`, ...) of the key a request carried."""
    sent = (request.headers.get("x-api-key") or request.headers.get("x-goog-api-key")
            or request.headers.get("authorization", "").removeprefix("Bearer "))
    return next((name for name, key in KEYS.items() if key == sent), f"unknown key {sent!r}")


def normally(request: Received) -> Behaviour:
    return NORMAL[key_of(request).split("-")[0]](request)


def first(behaviour: Behaviour):
    """A reply: `behaviour` for the first request, the protocol's normal answer after."""
    lock, answered = threading.Lock(), []

    def reply(request: Received) -> Behaviour:
        with lock:
            answered.append(request)
            return behaviour if len(answered) == 1 else normally(request)

    return reply


# Fixtures: the fake (`server`), and the gateway in front of it; a test module imports
# them by name (and may set GATEWAY_ARGS, mitmdump options).
gateway, fresh = gateway_fixtures("both-paths", routes_yaml, ENV, normally)


def post(gateway: Gateway, model: str, stream: bool, **body: Any) -> httpx.Response:
    request = {"model": model, "max_tokens": 64, "stream": stream, "messages": [{"role": "user", "content": "hi"}], **body}
    return httpx.post(f"{gateway.url}/v1/messages", json=request, timeout=15)


def events(response: httpx.Response) -> list[dict[str, Any]]:
    """The client's stream, ping-less, as parsed events (each one's data; names checked)."""
    assert response.status_code == 200, response.text
    found = []
    for name, data in re.findall(r"event: (\w+)\ndata: (.*)\n\n", response.text):
        event = json.loads(data)
        assert event["type"] == name
        if name != "ping":
            found.append(event)
    return found


def names(sequence: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in sequence]


def text_of(sequence: list[dict[str, Any]]) -> str:
    return "".join(e["delta"].get("text", "") for e in sequence if e["type"] == "content_block_delta")


def keys_seen(server: Upstream) -> list[str]:
    return [key_of(request) for request in server.received]


def credential(gateway: Gateway, provider: str, label: str) -> dict[str, Any]:
    return next(c for c in gateway.credentials()["providers"][provider]["credentials"] if c["label"] == label)

"""A Gemini `generateContent` server, scripted on top of `upstream.Upstream`.

`upstream.reply = gemini_like` makes the fake answer as the Gemini API would: a whole
GenerateContentResponse for `models/{model}:generateContent`, `data:` events for
`:streamGenerateContent?alt=sse` (a JSON array without `alt=sse`), google.rpc.Status
errors for a missing key or an unknown path, echoing the model in the path. The
builders below script any other answer: thoughts and function calls with their
`thoughtSignature`, finish reasons, usage, a blocked prompt, errors with RetryInfo and
ErrorInfo details. At the end: the routes.yaml and fixtures that put the real gateway
in front of it (with an anthropic provider on the same fake, told apart by path).
"""

from __future__ import annotations

import json
import re
from typing import Any

from openai_upstream import CLIENT_KEY, client, gateway_fixtures, server  # noqa: F401 (re-exported, with the fixture)
from upstream import Behaviour, Received, Reply, Stream, anthropic_like

GREETING = "Hello from the fake Gemini upstream."
# Gemini's signatures are base64 in the JSON; these have + / = so any re-encoding shows.
SIGNATURE = "CiQBcsjafJx0mV+8y0s2gQ/ZL3j5yE1cW2Ei9wL0dXbJ9kU+/w=="
CALL_SIGNATURE = "CmUBcsjafMtl3W2qKSN1A6n5HxxGm+bw4Kp/BuWc0f+A/9z=="
_PATH = re.compile(r"^/v1beta/models/([^/:?]+):(generateContent|streamGenerateContent)(?:\?(.*))?$")
TYPE = "type.googleapis.com/google.rpc."


def usage(prompt: int = 12, candidates: int = 7, cached: int | None = None, thoughts: int | None = None) -> dict[str, Any]:
    """usageMetadata: `cached` is part of `prompt`; `thoughts` are billed beside `candidates`."""
    metadata: dict[str, Any] = {"promptTokenCount": prompt, "candidatesTokenCount": candidates,
                                "totalTokenCount": prompt + candidates + (thoughts or 0)}
    if cached is not None:
        metadata["cachedContentTokenCount"] = cached
    if thoughts is not None:
        metadata["thoughtsTokenCount"] = thoughts
    return metadata


USAGE = usage()


def _signed(part: dict[str, Any], signature: str | None) -> dict[str, Any]:
    return {**part, "thoughtSignature": signature} if signature else part


def text(value: str, signature: str | None = None) -> dict[str, Any]:
    return _signed({"text": value}, signature)


def thought(value: str, signature: str | None = None) -> dict[str, Any]:
    """A thought summary part (sent when the request asks `includeThoughts`)."""
    return _signed({"text": value, "thought": True}, signature)


def call(name: str, args: dict[str, Any], signature: str | None = None, id: str | None = None) -> dict[str, Any]:
    """A functionCall part; Gemini 3 signs the first call of a turn. `id`: Gemini's id for
    the call, which its functionResponse must carry back."""
    return _signed({"functionCall": {"name": name, "args": args, **({"id": id} if id else {})}}, signature)


def response(*parts: dict[str, Any], finish: str | None = "STOP", usage: dict[str, Any] | None = USAGE,
             model: str = "gemini-test", blocked: str | None = None) -> dict[str, Any]:
    """One GenerateContentResponse: a whole answer, or one event of a stream (`finish`
    None for all but the last). `blocked`: the prompt was refused (promptFeedback
    blockReason), so there is no candidate at all."""
    body: dict[str, Any] = {}
    if blocked is not None:
        body["promptFeedback"] = {"blockReason": blocked, "safetyRatings": [
            {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}]}
    else:
        candidate: dict[str, Any] = {"content": {"parts": list(parts), "role": "model"}, "index": 0}
        if finish is not None:
            candidate["finishReason"] = finish
        if finish == "SAFETY":
            candidate["safetyRatings"] = [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH", "blocked": True}]
        body["candidates"] = [candidate]
    if usage is not None:
        body["usageMetadata"] = usage
    body.update(modelVersion=model, responseId="fake-gemini-response-1")
    return body


def chunks(*parts: dict[str, Any], finish: str = "STOP", usage: dict[str, Any] | None = USAGE,
           model: str = "gemini-test") -> list[dict[str, Any]]:
    """How Gemini streams `parts`: one event per part, a text part cut at its words; the
    usage so far (the prompt's count) on each, the whole usage and the finish on the last."""
    pieces: list[dict[str, Any]] = []
    for part in parts:
        if "text" in part and not part.get("thought") and " " in part["text"]:
            words = part["text"].split(" ")
            cut = [{"text": w + (" " if i < len(words) - 1 else "")} for i, w in enumerate(words)]
            if "thoughtSignature" in part:  # the signature comes on the last piece
                cut[-1]["thoughtSignature"] = part["thoughtSignature"]
            pieces += cut
        else:
            pieces.append(part)
    so_far = {"promptTokenCount": usage["promptTokenCount"]} if usage else None
    events = [response(piece, finish=None, usage=so_far, model=model) for piece in pieces[:-1]]
    events.append(response(*pieces[-1:], finish=finish, usage=usage, model=model))
    return events


def sse(items: list[dict[str, Any]]) -> list[bytes]:
    """`alt=sse` pieces, one per item, framed as Gemini frames them (`\\r\\n\\r\\n`); each
    piece is one write of a `Stream`."""
    return [f"data: {json.dumps(item, ensure_ascii=False)}\r\n\r\n".encode() for item in items]


def streaming(*items: dict[str, Any]):
    """A reply that streams `items` (responses, or errors) as `alt=sse` events."""
    return lambda request: Stream(sse(list(items)))


def whole(body: dict[str, Any]):
    """A reply that answers `body` as JSON."""
    return lambda request: json_reply(body)


# -- errors: google.rpc.Status ----------------------------------------------------


def retry_info(delay: str) -> dict[str, Any]:
    return {"@type": TYPE + "RetryInfo", "retryDelay": delay}


def error_info(reason: str, domain: str = "googleapis.com", **metadata: str) -> dict[str, Any]:
    return {"@type": TYPE + "ErrorInfo", "reason": reason, "domain": domain, "metadata": metadata}


def status(code: int, message: str, name: str, *details: dict[str, Any]) -> dict[str, Any]:
    """The error body Gemini answers, and also sends as a `data:` event inside a stream."""
    return {"error": {"code": code, "message": message, "status": name, "details": list(details)}}


def error_reply(code: int, message: str, name: str, *details: dict[str, Any]) -> Reply:
    return Reply(status=code, body=json.dumps(status(code, message, name, *details), indent=2).encode(),
                 headers={"content-type": "application/json; charset=UTF-8"})


QUOTA_MESSAGE = ("You exceeded your current quota, please check your plan and billing details. For more "
                 "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.")
QUOTA = status(429, QUOTA_MESSAGE, "RESOURCE_EXHAUSTED", {
    "@type": TYPE + "QuotaFailure",
    "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                    "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "quotaValue": "10"}],
}, {"@type": TYPE + "Help", "links": [{"description": "Learn more about Gemini API quotas",
                                        "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
    retry_info("37s"))  # fmt: skip
BAD_KEY_MESSAGE = "API key not valid. Please pass a valid API key."
BAD_KEY = status(400, BAD_KEY_MESSAGE, "INVALID_ARGUMENT",
                 error_info("API_KEY_INVALID", service="generativelanguage.googleapis.com"),
                 {"@type": TYPE + "LocalizedMessage", "locale": "en-US", "message": BAD_KEY_MESSAGE})


def rate_limited() -> Reply:
    return Reply(429, json.dumps(QUOTA).encode(), {"content-type": "application/json; charset=UTF-8"})


def bad_key() -> Reply:
    return Reply(400, json.dumps(BAD_KEY).encode(), {"content-type": "application/json; charset=UTF-8"})


def json_reply(body: Any) -> Reply:
    return Reply(body=json.dumps(body, ensure_ascii=False).encode(), headers={"content-type": "application/json; charset=UTF-8"})


def model_of(request: Received) -> str | None:
    """The model in a generateContent path; None for any other path."""
    found = _PATH.match(request.path)
    return found.group(1) if found else None


def streamed(request: Received) -> bool:
    found = _PATH.match(request.path)
    return bool(found and found.group(2) == "streamGenerateContent")


# What the fake's GET /v1beta/models lists: as Gemini's, embedding models too.
MODELS = ["embedding-001", "gemini-2.5-flash", "gemini-2.5-pro"]
UNREGISTERED = ("Method doesn't allow unregistered callers (callers without established identity). "
                "Please use API Key or other form of API consumer identity to call this API.")


def models_reply(request: Received) -> Reply:
    """Gemini's GET models: `models/NAME` names; a 403 without a key, as Gemini answers."""
    if not request.headers.get("x-goog-api-key"):
        return error_reply(403, UNREGISTERED, "PERMISSION_DENIED")
    return json_reply({"models": [{"name": f"models/{m}", "displayName": m,
                                   "supportedGenerationMethods": ["generateContent"]} for m in MODELS]})


def gemini_like(request: Received) -> Behaviour:
    """The default behaviour: answer like the Gemini API, echoing the model in the path;
    GET /v1beta/models lists MODELS. `/v1/messages` paths and `/v1/models` are the
    anthropic provider's, answered like Anthropic."""
    if request.path.startswith("/v1/messages") or request.path.split("?")[0] == "/v1/models":
        return anthropic_like(request)
    if request.method == "GET" and request.path.split("?")[0] == "/v1beta/models":
        return models_reply(request)
    found = _PATH.match(request.path)
    if request.method != "POST" or found is None:
        return error_reply(404, f"Unknown path {request.path}", "NOT_FOUND")
    if not request.headers.get("x-goog-api-key"):
        return error_reply(403, UNREGISTERED, "PERMISSION_DENIED")
    model, method, query = found.groups()
    if method == "generateContent":
        return json_reply(response(text(GREETING), model=model))
    events = chunks(text(GREETING), model=model)
    if query == "alt=sse":
        return Stream(sse(events))
    # Without alt=sse Gemini streams one JSON array, its elements written as they come.
    body = json.dumps(events).encode()
    return Stream([body[:1], body[1:]], headers={"content-type": "application/json; charset=UTF-8"})


# The gateway's side: a plain Gemini provider, a pool of two keys, an anthropic provider.
GEMINI_KEY = "AIzaSyFake-main-aaaaaaaaaaaaaaaaaaaa1"
FIRST_KEY = "AIzaSyFake-first-bbbbbbbbbbbbbbbbbbb2"
SECOND_KEY = "AIzaSyFake-second-cccccccccccccccccc3"
ANTHROPIC_KEY = "sk-ant-vendor-dddddddddddd4444"
ROUTES_ENV = {"GEMINI_KEY": GEMINI_KEY, "FIRST_KEY": FIRST_KEY, "SECOND_KEY": SECOND_KEY, "ANTHROPIC_KEY": ANTHROPIC_KEY}
LABELS = {GEMINI_KEY: "main", FIRST_KEY: "first", SECOND_KEY: "second"}


def routes_yaml(url: str) -> str:
    """`gemini-*` → Gemini as requested (`NAME(EFFORT)` names too); `deep-*` → a route
    model with an effort; `pooled-*` → two keys (so the failover relay sends it);
    `claude-*` → an anthropic provider on the same fake."""
    return f"""
providers:
  google:
    protocol: gemini
    base_url: "{url}/v1beta"
    credentials: [{{label: main, key: "${{GEMINI_KEY}}"}}]
  pool:
    protocol: gemini
    base_url: "{url}/v1beta"
    credentials: [{{label: first, key: "${{FIRST_KEY}}"}}, {{label: second, key: "${{SECOND_KEY}}"}}]
  claude:
    protocol: anthropic
    base_url: "{url}"
    credentials: [{{label: claude-main, key: "${{ANTHROPIC_KEY}}"}}]
routes:
  - {{match: "gemini-*", provider: google}}
  - {{match: "deep-*", provider: google, model: "gemini-3-pro-preview(low)"}}
  - {{match: "pooled-*", provider: pool, model: gemini-2.5-flash}}
  - {{match: "claude-*", provider: claude}}
profiles:
  gemini:
    slots: {{opus: "gemini-3-pro-preview(low)", sonnet: "gemini-2.5-flash(8192)", haiku: gemini-2.5-flash-lite}}
    providers: [google]
default: null
"""


# Fixtures for the gateway tests; a test module imports them by name to use them
# (`server`, the module's fake, and `client` are the OpenAI tests' own).
gateway, fresh = gateway_fixtures("gemini", routes_yaml, ROUTES_ENV, gemini_like)

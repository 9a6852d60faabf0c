"""Regenerates recordings/: the curated flows tests/test_replay.py replays.

    .venv/bin/python tests/record_cases.py [NAME-GLOB ...]     e.g. 'openai-chat-*'

With no internet here, the upstreams are the local fakes: tests/upstream.py answers as
Anthropic and Anthropic-compatible vendors do; a second one answers the translated
protocols with the builders of tests/openai_upstream.py, responses_upstream.py and
gemini_upstream.py.
One gateway records the whole run (`--set modelmux_record=...`); every case sends its
requests with the anthropic SDK, and its flows become recordings/<protocol>-<case>.mitm.

A protocol's recordings are its rows in CASES: a name, the model that routes to the
protocol's provider in ROUTES, the requests, and how the fake upstream answers them.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic

import gemini_upstream as gem
import openai_upstream as oai
import responses_upstream as rsp
from gateway import Gateway
from upstream import Behaviour, Received, Reply, Stream, Upstream

from modelmux.replay import recordings

REPO = Path(__file__).resolve().parent.parent

OUT = REPO / "recordings"
# Fake keys of realistic shapes: the recorder scrubs them like real ones.
KEYS = {
    "VENDOR_KEY": "sk-vendor-recording-aaaaaaaa1111",
    "VENDOR_KEY_A": "sk-vendor-recording-bbbbbbbb2222",
    "VENDOR_KEY_B": "sk-vendor-recording-cccccccc3333",
    "OPENAI_KEY": "sk-proj-recording-dddddddddddd4444",
    "OPENAI_KEY_A": "sk-proj-recording-eeeeeeeeeeee5555",
    "OPENAI_KEY_B": "sk-proj-recording-ffffffffffff6666",
    "GEMINI_KEY": "AIzaSyRecording-gggggggggggggggggg8888",
}
CLIENT_TOKEN = "sk-ant-api03-recording-client-token-7777"
ROUTES = """# The curated recordings' routes (tests/record_cases.py).
providers:
  anthropic: {{protocol: anthropic, base_url: "{anthropic}", auth: passthrough}}
  vendor:
    protocol: anthropic
    base_url: "{anthropic}/vendor/api"
    auth: "Authorization: Bearer {{key}}"
    credentials: [{{label: vendor-main, key: "${{VENDOR_KEY}}"}}]
  vendor-pool:
    protocol: anthropic
    base_url: "{anthropic}/vendor/api"
    strategy: fill-first
    credentials: [{{label: vendor-a, key: "${{VENDOR_KEY_A}}"}}, {{label: vendor-b, key: "${{VENDOR_KEY_B}}"}}]
  openai:
    protocol: openai-chat
    base_url: "{openai}/v1"
    reasoning_effort: true
    credentials: [{{label: openai-main, key: "${{OPENAI_KEY}}"}}]
  openai-pool:
    protocol: openai-chat
    base_url: "{openai}/v1"
    strategy: fill-first
    credentials: [{{label: openai-a, key: "${{OPENAI_KEY_A}}"}}, {{label: openai-b, key: "${{OPENAI_KEY_B}}"}}]
  codex:
    protocol: openai-responses
    base_url: "{openai}/v1"
    credentials: [{{label: codex-main, key: "${{OPENAI_KEY}}"}}]
  google:
    protocol: gemini
    base_url: "{openai}/v1beta"
    credentials: [{{label: google-main, key: "${{GEMINI_KEY}}"}}]
routes:
  - {{match: "codex-*", provider: codex, model: "gpt-5.3-codex(high)"}}
  - {{match: "gemini-*", provider: google, model: gemini-2.5-flash}}
  - {{match: "vendor-pool-*", provider: vendor-pool, model: glm-test}}
  - {{match: "vendor-*", provider: vendor, model: glm-test}}
  - {{match: "gpt-pool-*", provider: openai-pool, model: gpt-test}}
  - {{match: "gpt-fallback-*", provider: openai, model: gpt-test, fallback: [{{provider: vendor, model: glm-test}}]}}
  - {{match: "gpt-*", provider: openai, model: gpt-test}}
default: {{provider: anthropic}}
"""
# What each protocol's client asks for (the model routes it); pools and fallbacks have their own.
MODELS = {"anthropic": "claude-sonnet-4-5", "anthropic-vendor": "vendor-glm", "openai-chat": "gpt-chat",
          "openai-responses": "codex-responses", "gemini": "gemini-recorded"}  # fmt: skip
TRANSLATED = ("openai-chat", "openai-responses", "gemini")  # answered by the second fake
POOLS = {"anthropic-vendor": "vendor-pool-glm", "openai-chat": "gpt-pool-chat"}

PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da63f8cfc0f01f0005000201a5f1e3a60000000049454e44ae426082"
)).decode()  # a 1x1 PNG  # fmt: skip
WEATHER = {"name": "get_weather", "description": "Weather in a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
TIME = {"name": "get_time", "description": "Local time in a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
ASK = [{"role": "user", "content": "Say hello."}]
ASK_TOOL = [{"role": "user", "content": "Weather in Paris?"}]
ASK_TOOLS = [{"role": "user", "content": "Weather and time in Paris?"}]
ASK_IMAGE = [{"role": "user", "content": [
    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
    {"type": "text", "text": "What is this?"}]}]  # fmt: skip
THINKING = {"type": "enabled", "budget_tokens": 1024}


# ---- how the fakes answer -----------------------------------------------------------------

def anthropic_answer(*blocks: dict[str, Any], stop: str = "end_turn") -> Callable[[Received], Behaviour]:
    """Answer with these content blocks, whole or streamed as the request asks."""

    def reply(request: Received) -> Behaviour:
        body = request.json()
        message = {"id": "msg_01RecordedFake", "type": "message", "role": "assistant", "model": body["model"],
                   "content": list(blocks), "stop_reason": stop, "stop_sequence": None,
                   "usage": {"input_tokens": 21, "output_tokens": 9}}  # fmt: skip
        if body.get("stream"):
            return Stream(anthropic_events(message))
        return Reply(body=json.dumps(message).encode())

    return reply


def anthropic_events(message: dict[str, Any]) -> list[bytes]:
    """How Anthropic streams `message`: every block opened empty, filled by deltas."""
    def event(name: str, data: dict[str, Any]) -> bytes:
        return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()

    start = {**message, "content": [], "stop_reason": None, "usage": {**message["usage"], "output_tokens": 1}}
    events = [event("message_start", {"type": "message_start", "message": start}), event("ping", {"type": "ping"})]
    for index, block in enumerate(message["content"]):
        empty, deltas = dict(block), []
        if block["type"] == "text":
            empty["text"], deltas = "", [{"type": "text_delta", "text": part} for part in halves(block["text"])]
        elif block["type"] == "thinking":
            empty.update(thinking="", signature="")
            deltas = [{"type": "thinking_delta", "thinking": part} for part in halves(block["thinking"])]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        elif block["type"] == "tool_use":
            empty["input"] = {}
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in halves(json.dumps(block["input"]))]
        events.append(event("content_block_start", {"type": "content_block_start", "index": index, "content_block": empty}))
        events += [event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d}) for d in deltas]
        events.append(event("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(event("message_delta", {"type": "message_delta", "usage": {"output_tokens": message["usage"]["output_tokens"]},
                                          "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None}}))
    events.append(event("message_stop", {"type": "message_stop"}))
    return events


def anthropic_error(status: int, error_type: str, message: str, **headers: str) -> Callable[[Received], Behaviour]:
    body = json.dumps({"type": "error", "error": {"type": error_type, "message": message}}).encode()
    return lambda request: Reply(status, body, {"content-type": "application/json", **headers})


def openai_answer(text: str | None = None, calls: list[tuple[str, str, dict]] = (), reasoning: str | None = None
                  ) -> Callable[[Received], Behaviour]:
    """Answer with text and/or tool calls ((id, name, arguments)), whole or streamed."""

    def reply(request: Received) -> Behaviour:
        body = request.json()
        if not body.get("stream"):
            tool_calls = [oai.tool_call(i, n, a) for i, n, a in calls] or None
            return oai.json_reply(oai.completion(text, tool_calls, reasoning, "tool_calls" if calls else "stop",
                                                 model=body["model"]))
        if not calls:
            return Stream(oai.sse(oai.text_chunks(text, model=body["model"], reasoning=reasoning)))
        chunks = [oai.chunk({"role": "assistant", "content": None}, model=body["model"])]
        for index, (call_id, name, arguments) in enumerate(calls):
            chunks.append(oai.chunk({"tool_calls": [oai.tool_call(call_id, name, "", index=index)]}, model=body["model"]))
            chunks += [oai.chunk({"tool_calls": [oai.tool_call(None, None, part, index=index)]}, model=body["model"])
                       for part in halves(json.dumps(arguments))]
        chunks += [oai.chunk({}, finish="tool_calls", model=body["model"]),
                   oai.chunk(usage=oai.USAGE, choices=False, model=body["model"])]
        return Stream(oai.sse(chunks))

    return reply


def responses_answer(text: str | None = None, calls: list[tuple[str, str, dict]] = (), reasoning: str | None = None
                     ) -> Callable[[Received], Behaviour]:
    """The Responses API's answer: a reasoning item, a message, function calls."""

    def reply(request: Received) -> Behaviour:
        body = request.json()
        output = [rsp.reasoning(reasoning, id="rs_RecordedThought")] if reasoning else []
        output += [rsp.message(text, id="msg_RecordedText")] if text else []
        output += [rsp.function_call(c, n, a, id=f"fc_Recorded{i}") for i, (c, n, a) in enumerate(calls)]
        if body.get("stream"):
            return Stream(rsp.sse(rsp.events(output, model=body["model"])))
        return oai.json_reply(rsp.response(output, model=body["model"]))

    return reply


def gemini_answer(*parts: dict[str, Any]) -> Callable[[Received], Behaviour]:
    """Gemini's answer of these parts, whole or streamed as the path asks."""

    def reply(request: Received) -> Behaviour:
        model = gem.model_of(request) or "gemini-test"
        if gem.streamed(request):
            return Stream(gem.sse(gem.chunks(*parts, model=model)))
        return gem.json_reply(gem.response(*parts, model=model))

    return reply


def halves(text: str) -> list[str]:
    half = len(text) // 2
    return [part for part in (text[:half], text[half:]) if part]


def only_for(header: str, value: str, behaviour: Callable[[Received], Behaviour]) -> Callable[[Received], Behaviour | None]:
    """A gate: `behaviour` for requests carrying this credential, the default for the rest."""
    return lambda request: behaviour(request) if request.headers.get(header) == value else None


# ---- the cases ------------------------------------------------------------------------------

@dataclass
class Case:
    protocol: str
    name: str
    requests: list[dict[str, Any]]  # keyword arguments of client.messages.create, model filled in
    anthropic: Callable[[Received], Behaviour] | None = None  # the Anthropic-side fake's answer
    translated: Callable[[Received], Behaviour] | None = None  # the OpenAI and Gemini fake's
    anthropic_gate: Callable[[Received], Behaviour | None] | None = None
    translated_gate: Callable[[Received], Behaviour | None] | None = None
    model: str | None = None  # default: the protocol's
    flows: list = field(default_factory=list)

    @property
    def file(self) -> str:
        return f"{self.protocol}-{self.name}.mitm"


def request(messages: list[dict], stream: bool = False, **extra: Any) -> dict[str, Any]:
    """A Messages request: `call` is how the SDK sends it (see `run`)."""
    return {"call": "stream" if stream else "create", "max_tokens": 64, "messages": messages, **extra}


def cases() -> list[Case]:
    text = "Hello! How can I help?"
    weather = {"city": "Paris"}
    tool = {"type": "tool_use", "id": "toolu_01RecordedWeather", "name": "get_weather", "input": weather}
    tools = [tool, {"type": "tool_use", "id": "toolu_01RecordedTime", "name": "get_time", "input": weather}]
    thought = {"type": "thinking", "thinking": "The user wants a greeting.", "signature": "c2lnbmF0dXJl"}
    thought_text = "The user wants a greeting."
    signed_call = gem.call("get_weather", weather, gem.CALL_SIGNATURE)
    openai_400 = lambda r: oai.error_reply(400, "max_tokens is too large", code="invalid_value")  # noqa: E731
    openai_429 = lambda r: oai.error_reply(429, "Rate limit reached", "rate_limit_exceeded",  # noqa: E731
                                           headers={"retry-after": "7"})
    fakes = {  # case → protocol → how the fake answers (the anthropic fake serves both anthropic protocols)
        "text": {"anthropic": anthropic_answer({"type": "text", "text": text}), "openai-chat": openai_answer(text),
                 "openai-responses": responses_answer(text), "gemini": gemini_answer(gem.text(text))},
        "tool-call": {"anthropic": anthropic_answer(tool, stop="tool_use"),
                      "openai-chat": openai_answer(calls=[("call_RecordedWeather", "get_weather", weather)]),
                      "openai-responses": responses_answer(calls=[("call_RecordedWeather", "get_weather", weather)]),
                      "gemini": gemini_answer(signed_call)},
        "parallel-tool-calls": {"anthropic": anthropic_answer(*tools, stop="tool_use"), "openai-chat": openai_answer(calls=[
            ("call_RecordedWeather", "get_weather", weather), ("call_RecordedTime", "get_time", weather)]),
            "openai-responses": responses_answer(calls=[
                ("call_RecordedWeather", "get_weather", weather), ("call_RecordedTime", "get_time", weather)]),
            "gemini": gemini_answer(signed_call, gem.call("get_time", weather))},
        "thinking": {"anthropic": anthropic_answer(thought, {"type": "text", "text": text}),
                     "openai-chat": openai_answer(text, reasoning=thought_text),
                     "openai-responses": responses_answer(text, reasoning=thought_text),
                     "gemini": gemini_answer(gem.thought(thought_text, gem.SIGNATURE), gem.text(text))},
        "image": {"anthropic": anthropic_answer({"type": "text", "text": "A single pixel."}),
                  "openai-chat": openai_answer("A single pixel."), "openai-responses": responses_answer("A single pixel."),
                  "gemini": gemini_answer(gem.text("A single pixel."))},
        "error-400": {"anthropic": anthropic_error(400, "invalid_request_error", "max_tokens: too large"),
                      "openai-chat": openai_400, "openai-responses": openai_400,
                      "gemini": lambda r: gem.error_reply(400, "Invalid value at 'generation_config.max_output_tokens'",
                                                          "INVALID_ARGUMENT")},
        "error-429": {"anthropic": anthropic_error(429, "rate_limit_error", "Rate limited", **{"retry-after": "7"}),
                      "openai-chat": openai_429, "openai-responses": openai_429, "gemini": lambda r: gem.rate_limited()},
    }  # fmt: skip
    requests = {
        "text": [request(ASK), request(ASK, stream=True)],
        "tool-call": [request(ASK_TOOL, tools=[WEATHER]), request(ASK_TOOL, stream=True, tools=[WEATHER])],
        "parallel-tool-calls": [request(ASK_TOOLS, stream=True, tools=[WEATHER, TIME])],
        "thinking": [request(ASK, stream=True, max_tokens=2048, thinking=THINKING)],
        "image": [request(ASK_IMAGE)],
        "error-400": [request(ASK)],
        "error-429": [request(ASK, stream=True)],
    }
    found = []
    for protocol in MODELS:
        for name, answers in fakes.items():
            side = {"translated": answers[protocol]} if protocol in TRANSLATED else {"anthropic": answers["anthropic"]}
            found.append(Case(protocol, name, requests[name], **side))
    limited = {"anthropic-vendor": ("x-api-key", KEYS["VENDOR_KEY_A"]),
               "openai-chat": ("authorization", f"Bearer {KEYS['OPENAI_KEY_A']}")}  # fmt: skip
    for protocol, (header, value) in limited.items():
        side = "openai-chat" if protocol == "openai-chat" else "anthropic"
        gate = only_for(header, value, fakes["error-429"][side])
        found.append(Case(protocol, "failover-key", [request(ASK, stream=True)], model=POOLS[protocol],
                          anthropic=fakes["text"]["anthropic"], translated=fakes["text"]["openai-chat"],
                          **({"translated_gate": gate} if protocol == "openai-chat" else {"anthropic_gate": gate})))
    count = [{"call": "count_tokens", "messages": ASK}]
    counted = lambda r: Reply(body=json.dumps({"input_tokens": 11}).encode())  # noqa: E731
    found += [Case("anthropic", "count-tokens", count, anthropic=counted),
              Case("anthropic-vendor", "count-tokens", count, anthropic=counted),
              *[Case(p, "count-tokens", count) for p in TRANSLATED]]  # estimated by modelmux, no upstream asked
    files = lambda r: Reply(body=json.dumps({"data": [], "has_more": False, "first_id": None, "last_id": None}).encode())  # noqa: E731
    found.append(Case("anthropic", "other-paths", [{"call": "models"}, {"call": "files"}], anthropic=files))
    found.append(Case("openai-chat", "failover-provider", [request(ASK, stream=True)], model="gpt-fallback-chat",
                      anthropic=fakes["text"]["anthropic"],
                      translated=lambda r: oai.error_reply(503, "The server is overloaded", "server_error")))
    return found


# ---- running them ---------------------------------------------------------------------------

def run(case: Case, client: anthropic.Anthropic) -> None:
    for kwargs in case.requests:
        kwargs = {**kwargs, "model": case.model or MODELS[case.protocol]}
        call = kwargs.pop("call")
        try:
            if call == "stream":
                with client.messages.stream(**kwargs) as events:
                    events.get_final_message()
            elif call == "create":
                client.messages.create(**kwargs)
            elif call == "count_tokens":
                client.messages.count_tokens(model=kwargs["model"], messages=kwargs["messages"])
            elif call == "models":
                client.models.list()
            elif call == "files":  # a path modelmux does not route: passed to Anthropic as it is
                client.beta.files.list()
        except anthropic.APIStatusError as e:  # the error cases
            print(f"    {e.status_code} {e.message[:80]}")


def recorded(session: Path, count: int) -> list:
    """The session's flows once `count` are written (each is written when it ends)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            flows = recordings.read(session) if session.exists() else []
        except ValueError:
            flows = []  # read while a flow was half-written
        if len(flows) >= count or time.monotonic() > deadline:
            return flows
        time.sleep(0.05)


def main(patterns: list[str]) -> int:
    warnings.filterwarnings("ignore", "The model .* is deprecated")  # routing input, as in the tests
    chosen = [c for c in cases() if not patterns or any(fnmatch.fnmatch(c.file, p) for p in patterns)]
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as work, Upstream() as anthropic_fake, Upstream() as translated_fake:
        session = Path(work) / "session.mitm"
        routes = ROUTES.format(anthropic=anthropic_fake.url, openai=translated_fake.url)
        gateway = Gateway(Path(work), routes, KEYS, ["--set", f"modelmux_record={session}"])
        with gateway:
            client = anthropic.Anthropic(base_url=gateway.url, api_key=CLIENT_TOKEN, max_retries=0)
            count = 0
            for case in chosen:
                print(f"{case.file}")
                gateway.reset_credentials()
                anthropic_fake.reply = case.anthropic or (lambda r: Reply(500))
                translated_fake.reply = case.translated or oai.openai_like
                anthropic_fake.gate, translated_fake.gate = case.anthropic_gate, case.translated_gate
                run(case, client)
                count += len(case.requests)
                case.flows = recorded(session, count)[count - len(case.requests):count]
        for case in chosen:
            if len(case.flows) != len(case.requests):
                print(f"{case.file}: {len(case.flows)} flows recorded for {len(case.requests)} requests", file=sys.stderr)
                return 1
            recordings.write(OUT / case.file, case.flows)
    print(f"wrote {len(chosen)} recordings to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""`modelmux check --deep` against a fake provider whose capabilities are flags
(capable_upstream.Capable): each difference is found, with its evidence, and the right
routes.yaml lines are proposed; requests are built as the gateway builds them and
shaped by what earlier ones learned; a provider that stalls or fails is reported and the
check finishes; nothing printed holds a key. Then the pure parts: limits in refusals,
readings of whole answers, the attachments."""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import openai_upstream
from capable_upstream import Capable
from check_upstream import ENV, OAI_KEY, write
from modelmux.cli import check, main as cli
from modelmux.cli.capabilities import limits, readings, requests
from modelmux.translate import media
from upstream import Received, Upstream

MODELS = {"openai-chat": "deepseek-reasoner", "openai-responses": "gpt-5-mini", "gemini": "gemini-2.5-flash",
          "anthropic": "glm-4.6"}  # fmt: skip
PATHS = {"openai-chat": "/chat/v1", "openai-responses": "/resp/v1", "gemini": "/v1beta", "anthropic": ""}
CHAT_PLAN = ("model list, streamed answer, stream without stream_options, the other max-tokens field, output limit, "
             "reasoning, two tool calls, tool results, image, PDF")  # fmt: skip
PLAN = "model list, streamed answer, output limit, reasoning, two tool calls, tool results, image, PDF"
HEAD = ["capability | found | evidence"]


@pytest.fixture
def server() -> Iterator[Upstream]:
    with Upstream() as fake:
        yield fake


def routes(url: str, protocol: str, extra: str = "", key: str = "OAI_KEY") -> str:
    """One provider `p` of `protocol` on the fake, naming its model; `extra`: more of its keys."""
    return "providers:\n" + block("p", protocol, url, MODELS[protocol], key) + extra


def block(name: str, protocol: str, url: str, model: str, key: str = "OAI_KEY") -> str:
    return (f"  {name}:\n    protocol: {protocol}\n    base_url: {url}{PATHS[protocol]}\n"
            f"    credentials: [{{label: main, key: \"${{{key}}}\"}}]\n    models: [{model}]\n")


def deep(tmp_path: Path, server: Upstream, capable: Capable, text: str, as_json: bool = False,
         timeout: float = 5, **narrow: str) -> tuple[int, str]:
    server.reply = capable.reply  # type: ignore[assignment]
    out = io.StringIO()
    options = check.Deep(timeout=timeout, **narrow)
    return check.run(write(tmp_path, text), False, as_json, ENV, out, options), out.getvalue()


def lines(out: str) -> list[str]:
    """The output's lines, the table's cells between ` | ` (its widths depend on them)."""
    return [re.sub(r"(?<=\S) {2,}", " | ", line) for line in out.splitlines()]


def posts(server: Upstream) -> list[dict[str, Any]]:
    return [r.json() for r in server.received if r.method == "POST"]


def intro(tmp_path: Path, protocol: str, plan: str, count: int) -> list[str]:
    return [f"{tmp_path / 'routes.yaml'}: valid", "",
            f"deep check of p ({protocol}), model {MODELS[protocol]}, credential main: at most {count} requests, "
            f"each waiting at most 5 s: {plan}", ""]  # fmt: skip


def follows(changes: list[str], model: str, **facts: object) -> list[str]:
    """The expected end of a report: the provider's lines (`key: value`), the model's
    entry (YAML values as written), and the summary of an all-answered check."""
    out = ["routes.yaml lines that follow (not written to the file):"]
    out += ["  providers.p:", *(f"    {line}" for line in changes)] if changes else ["  providers.p: nothing to change"]
    if facts:
        out += ["  providers.p.models (this model's entry):", f"    - name: {model}"]
        out += [f"      {key}: {value}" for key, value in facts.items()]
    return [*out, "", "deep check: 1 of 1 providers probed; all answered"]


def test_a_deepseek_like_chat_provider(tmp_path: Path, server: Upstream) -> None:
    """Usage only when asked, reasoning_content, DeepSeek's range refusal of a large
    max_tokens, the reasoning wanted back with tool calls, no PDFs, a context length in
    its model list."""
    capable = Capable(usage="asked", reasoning="reasoning_content", max_output=8192, wants_reasoning_back=True,
                      documents=False, listed={"deepseek-reasoner": {"context_length": 131072}})  # fmt: skip
    status, out = deep(tmp_path, server, capable, routes(server.url, "openai-chat"))
    assert (status, lines(out)) == (0, [*intro(tmp_path, "openai-chat", CHAT_PLAN, 10),
        "p, deepseek-reasoner: 10 of 10 requests sent", *HEAD,
        "streamed usage | yes, only with stream_options.include_usage (modelmux sends it) | HTTP 200: no usage in "
        "the stream without stream_options",
        "max-tokens field | max_tokens; max_completion_tokens taken too | HTTP 200: max_completion_tokens taken",
        "max output | 8192 | HTTP 400: Invalid max_tokens value, the valid range of max_tokens is [1, 8192]",
        "context window | 131072 | its model list",
        "reasoning | reasoning_content | HTTP 200: '17 × 23: 17 × 20 is 340, plus 51.'",
        "parallel tool calls | yes (2 calls in one turn) | HTTP 200: get_weather, get_time",
        "tool-call ids | present, unique, Anthropic's form | e.g. call_0a1b2c3d4e5f6",
        "reasoning with tools | wanted back | HTTP 400: Missing `reasoning_content` field in the assistant message "
        "at message index 1. For more information…",
        "images | accepted, and the answer names its colour (red) | HTTP 200: 'Red.'",
        "documents | refused | HTTP 400: Invalid value: 'file'. Supported values are: 'text' and 'image_url'.",
        "routes.yaml lines that follow (not written to the file):",
        "  providers.p:",
        "    max_tokens_limit: 8192",
        "    reasoning_history: true",
        "  providers.p.models (this model's entry):",
        "    - name: deepseek-reasoner",
        "      context_window: 131072",
        "      max_output: 8192",
        "      thinking: true",
        "      images: true",
        "      documents: false",
        "",
        "deep check: 1 of 1 providers probed; all answered",
    ])  # fmt: skip
    sent = posts(server)
    # Built as the gateway builds them: stream_options asked, then left out to see whether
    # usage comes anyway; the other field; the absurd limit past any cap; the next turn
    # with the calls' results and without the reasoning.
    assert [("stream_options" in b, "max_tokens" in b, b.get("max_tokens") or b.get("max_completion_tokens"))
            for b in sent[:4]] == [(True, True, 16), (False, True, 16), (True, False, 16), (True, True, 100_000_000)]
    assert sent[5]["tool_choice"] == "auto" and len(sent[5]["tools"]) == 2 and sent[5]["max_tokens"] == 1280
    turn = sent[6]["messages"]
    assert [m["role"] for m in turn] == ["user", "assistant", "tool", "tool"] and "reasoning_content" not in turn[1]
    assert [m["tool_call_id"] for m in turn[2:]] == ["call_0a1b2c3d4e5f6", "call_1a1b2c3d4e5f6"]
    assert sent[7]["messages"][0]["content"][0]["type"] == "image_url"
    assert sent[8]["messages"][0]["content"][0]["file"]["filename"] == "document.pdf"  # sent although documents: false
    assert all(r.headers["authorization"] == f"Bearer {OAI_KEY}" for r in server.received)


def test_a_chat_provider_refusing_fields_is_sent_without_them(tmp_path: Path, server: Upstream) -> None:
    """OpenAI's refusal of max_tokens and a server's of stream_options: the first request
    is retried as the proposed lines would send it, and so is every later one. vLLM's
    context-window wording, Kimi's ids, reasoning left in the text."""
    capable = Capable(refuses=frozenset({"max_tokens", "stream_options"}), context=4096, ids="kimi",
                      reasoning="<think>")  # fmt: skip
    status, out = deep(tmp_path, server, capable, routes(server.url, "openai-chat"))
    assert (status, lines(out)[4:]) == (0, [
        "p, deepseek-reasoner: 10 of 10 requests sent", *HEAD,
        "streamed usage | stream_options refused; usage: yes, without it | HTTP 400: Unsupported parameter: "
        "'stream_options' is not supported with this model.",
        "max-tokens field | max_completion_tokens (max_tokens refused) | HTTP 400: Unsupported parameter: "
        "'max_tokens' is not supported with this model.",
        "max output | not revealed | HTTP 400: This model's maximum context length is 4096 tokens. However, you "
        "requested 100000012 tokens (12 in …",
        "context window | 4096 | HTTP 400: This model's maximum context length is 4096 tokens. However, you "
        "requested 100000012 tokens (12 in …",
        "reasoning | <think> in the text | HTTP 200: '17 × 23: 17 × 20 is 340, plus 51.'",
        "parallel tool calls | yes (2 calls in one turn) | HTTP 200: get_weather, get_time",
        "tool-call ids | present, unique, not Anthropic's form (modelmux encodes them) | e.g. functions.get_weather:0",
        "reasoning with tools | not needed back | HTTP 200: the next turn answered",
        "images | accepted, and the answer names its colour (red) | HTTP 200: '<think>17 × 23: 17 × 20 is 340, "
        "plus 51.</think>Red.'",
        "documents | accepted, and the answer names its word (PELICAN) | HTTP 200: '<think>17 × 23: 17 × 20 is "
        "340, plus 51.</think>PELICAN'",
        *follows(["max_tokens_field: max_completion_tokens", "drop_fields: [stream_options]", "documents: true"],
                 "deepseek-reasoner", context_window=4096, thinking="true", images="true", documents="true"),
    ])  # fmt: skip
    sent = posts(server)
    first = [("max_tokens" in b, "stream_options" in b) for b in sent[:3]]
    assert first == [(True, True), (False, True), (False, False)]
    assert all("max_completion_tokens" in b and "stream_options" not in b for b in sent[2:])
    # Kimi's ids go back as Kimi made them (modelmux encoded them for the client).
    assert [m["tool_call_id"] for m in sent[6]["messages"][2:]] == ["functions.get_weather:0", "functions.get_time:1"]


def test_a_chat_provider_refusing_an_effort_the_gateway_sends(tmp_path: Path, server: Upstream) -> None:
    """reasoning_effort: true in routes.yaml, refused; no usage at all (so no second
    stream); two calls with one id."""
    capable = Capable(refuses=frozenset({"reasoning_effort"}), usage="never", ids="same")
    text = routes(server.url, "openai-chat", "    reasoning_effort: true\n    documents: true\n")
    status, out = deep(tmp_path, server, capable, text)
    assert (status, lines(out)[4:]) == (0, [
        "p, deepseek-reasoner: 9 of 10 requests sent", *HEAD,
        "streamed usage | no, not even with stream_options.include_usage | HTTP 200: no usage in the stream",
        "max-tokens field | max_tokens; max_completion_tokens taken too | HTTP 200: max_completion_tokens taken",
        "max output | not revealed | HTTP 200: max_tokens 100000000 taken",
        "context window | not revealed | HTTP 200: max_tokens 100000000 taken",
        "reasoning | reasoning_effort refused | HTTP 400: Unsupported parameter: 'reasoning_effort' is not supported "
        "with this model.",
        "parallel tool calls | yes (2 calls in one turn) | HTTP 200: get_weather, get_time",
        "tool-call ids | present, NOT unique, Anthropic's form | e.g. call_same",
        "tool results | accepted | HTTP 200: the next turn answered",
        "images | accepted, and the answer names its colour (red) | HTTP 200: 'Red.'",
        "documents | accepted, and the answer names its word (PELICAN) | HTTP 200: 'PELICAN'",
        *follows(["reasoning_effort: false"], "deepseek-reasoner", thinking="false", images="true", documents="true"),
    ])  # fmt: skip
    sent = posts(server)  # no second stream: no usage came even when asked
    assert sent[3]["reasoning_effort"] == "low"  # Claude Code's 1024-token budget, as the gateway sends it
    assert "reasoning_effort" not in sent[4] and sent[4]["tools"]  # the tool turn does not think: no reasoning came


def test_a_responses_provider(tmp_path: Path, server: Upstream) -> None:
    capable = Capable(reasoning="yes", parallel=False, max_output=128000, images=False,
                      listed={"gpt-5-mini": {"context_length": 400000}})  # fmt: skip
    status, out = deep(tmp_path, server, capable, routes(server.url, "openai-responses"))
    assert (status, lines(out)) == (0, [*intro(tmp_path, "openai-responses", PLAN, 8),
        "p, gpt-5-mini: 8 of 8 requests sent", *HEAD,
        "streamed usage | yes | HTTP 200: usage reported",
        "max output | 128000 | HTTP 400: max_output_tokens must be less than or equal to 128000.",
        "context window | 400000 | its model list",
        "reasoning | reasoning summaries, encrypted reasoning | HTTP 200: 'Multiplying 17 by 23.'",
        "parallel tool calls | no (one call) | HTTP 200: get_weather",
        "tool-call ids | present, unique, Anthropic's form | e.g. call_0a1b2c3d4e5f6",
        "tool results | accepted | HTTP 200: the next turn answered",
        "images | refused | HTTP 400: Invalid content: input_image is not supported by this model.",
        "documents | accepted, and the answer names its word (PELICAN) | HTTP 200: 'PELICAN'",
        *follows(["images: false"], "gpt-5-mini", context_window=400000, max_output=128000, thinking="true",
                 images="false", documents="true"),
    ])  # fmt: skip
    # The tool turn thinks, and the next one replays its encrypted reasoning as the gateway does.
    replayed = posts(server)[4]["input"]
    assert [i["type"] for i in replayed] == ["message", "reasoning", "function_call", "function_call_output"]
    assert replayed[1]["encrypted_content"] and replayed[2]["call_id"] == "call_0a1b2c3d4e5f6"


@pytest.mark.parametrize(("refused", "line", "found"), [
    ("summary", "reasoning_summary: none", "summaries refused | HTTP 400: Your organization must be verified to "
                                           "generate reasoning summaries."),
    ("reasoning", "reasoning_effort: false", "reasoning refused | HTTP 400: Unsupported parameter: "
                                             "'reasoning.effort' is not supported with this model."),
])  # fmt: skip
def test_a_responses_provider_refusing_reasoning(tmp_path: Path, server: Upstream, refused: str, line: str,
                                                 found: str) -> None:
    status, out = deep(tmp_path, server, Capable(refuses=frozenset({refused}), reasoning="yes"),
                       routes(server.url, "openai-responses"))
    assert status == 0
    assert f"reasoning | {found}" in lines(out)
    assert lines(out)[lines(out).index("  providers.p:") + 1] == f"    {line}"


def test_a_gemini_provider(tmp_path: Path, server: Upstream) -> None:
    capable = Capable(reasoning="yes", ids="none", max_output=65536,
                      listed={"gemini-2.5-flash": {"inputTokenLimit": 1048576, "outputTokenLimit": 65536}})
    status, out = deep(tmp_path, server, capable, routes(server.url, "gemini", key="GEMINI_KEY"))
    assert (status, lines(out)[4:]) == (0, [
        "p, gemini-2.5-flash: 8 of 8 requests sent", *HEAD,
        "streamed usage | yes | HTTP 200: usage reported",
        "max output | 65536 | …00000 but the supported range is from 1 (inclusive) to 65537 (exclusive). Update the "
        "value and try again. (I…",
        "context window | 1048576 | its model list",
        "reasoning | thought parts | HTTP 200: '17 × 23: 17 × 20 is 340, plus 51.'",
        "parallel tool calls | yes (2 calls in one turn) | HTTP 200: get_weather, get_time",
        "tool-call ids | absent (modelmux makes toolu_ ids) | no id on any call",
        "tool results | accepted | HTTP 200: the next turn answered",
        "images | accepted, and the answer names its colour (red) | HTTP 200: 'Red.'",
        "documents | accepted, and the answer names its word (PELICAN) | HTTP 200: 'PELICAN'",
        *follows([], "gemini-2.5-flash", context_window=1048576, max_output=65536, thinking="true", images="true",
                 documents="true"),
    ])  # fmt: skip
    sent = [r for r in server.received if r.method == "POST"]
    assert all(r.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse" for r in sent)
    assert sent[2].json()["generationConfig"]["thinkingConfig"] == {"includeThoughts": True, "thinkingBudget": 1024}
    assert [list(p) for p in sent[4].json()["contents"][2]["parts"]] == [["functionResponse"], ["functionResponse"]]


def test_an_anthropic_compatible_vendor(tmp_path: Path, server: Upstream) -> None:
    """Only the model's facts: an anthropic provider's requests go as Claude Code sends
    them, so no shaping key applies."""
    capable = Capable(reasoning="yes", max_output=32000, documents=False,
                      listed={"glm-4.6": {"max_input_tokens": 200000, "max_tokens": 128000}})
    status, out = deep(tmp_path, server, capable, routes(server.url, "anthropic"))
    assert (status, lines(out)[4:]) == (0, [
        "p, glm-4.6: 8 of 8 requests sent", *HEAD,
        "streamed usage | yes | HTTP 200: usage reported",
        "max output | 32000 | HTTP 400: max_tokens: 100000000 > 32000, which is the maximum allowed number of output "
        "tokens for glm-4.6",
        "context window | 200000 | its model list",
        "reasoning | thinking blocks | HTTP 200: '17 × 23: 17 × 20 is 340, plus 51.'",
        "parallel tool calls | yes (2 calls in one turn) | HTTP 200: get_weather, get_time",
        "tool-call ids | present, unique, Anthropic's form | e.g. call_0a1b2c3d4e5f6",
        "tool results | accepted | HTTP 200: the next turn answered",
        "images | accepted, and the answer names its colour (red) | HTTP 200: 'Red.'",
        "documents | refused | HTTP 400: This model does not support PDF input.",
        *follows([], "glm-4.6", context_window=200000, max_output=32000, thinking="true", images="true",
                 documents="false"),
    ])  # fmt: skip
    # The thinking block, signature and all, goes back with the results.
    turn = posts(server)[4]["messages"]
    assert turn[1]["content"][0] == {"type": "thinking", "thinking": "17 × 23: 17 × 20 is 340, plus 51.",
                                     "signature": "EqQBCkgIARABGAIiQ-fake-anthropic-signature"}


def test_probes_that_stall_or_fail_are_reported_and_the_check_finishes(tmp_path: Path, server: Upstream) -> None:
    capable = Capable(stall=frozenset({"image"}), fail=frozenset({"document", "limit"}))
    started = time.monotonic()
    status, out = deep(tmp_path, server, capable, routes(server.url, "openai-responses"), timeout=1)
    assert time.monotonic() - started < 10
    shown = [line for line in lines(out) if line.startswith(("max", "context", "images", "documents"))]
    assert (status, shown) == (3, [
        "max output | not revealed | HTTP 500: The server had an error while processing your request.",
        "context window | not revealed | HTTP 500: The server had an error while processing your request.",
        "images | not known | no answer within 1 s",
        "documents | not known | HTTP 500: The server had an error while processing your request.",
    ])  # fmt: skip
    assert lines(out)[-1] == "deep check: 1 of 1 providers probed; incomplete (a probe got no answer): p"


def test_after_two_requests_without_an_answer_the_rest_are_not_sent(tmp_path: Path, server: Upstream) -> None:
    capable = Capable(stall=frozenset({"limit", "thinking"}))
    status, out = deep(tmp_path, server, capable, routes(server.url, "anthropic"), timeout=1)
    assert (status, lines(out)[4:]) == (3, [
        "p, glm-4.6: 4 of 8 requests sent", *HEAD,
        "streamed usage | yes | HTTP 200: usage reported",
        "max output | not revealed | no answer within 1 s",
        "context window | not revealed | no answer within 1 s",
        "reasoning | not known | no answer within 1 s",
        *[f"{name} | not known | not sent: the two requests before it got no answer"
          for name in ("parallel tool calls", "tool-call ids", "tool results", "images", "documents")],
        "routes.yaml lines that follow (not written to the file):",
        "  providers.p: nothing to change",
        "",
        "deep check: 1 of 1 providers probed; incomplete (a probe got no answer): p",
    ])  # fmt: skip


def test_a_provider_whose_first_request_fails_is_not_probed_further(tmp_path: Path, server: Upstream) -> None:
    capable = Capable(stall=frozenset({"plain"}))
    status, out = deep(tmp_path, server, capable, routes(server.url, "gemini", key="GEMINI_KEY"), timeout=1)
    assert (status, lines(out)[4:]) == (1, [
        "p, gemini-2.5-flash: 2 of 8 requests sent; FAILED: its first request, as the gateway sends it, did not "
        "work: no answer within 1 s",
        "",
        "deep check: 1 of 1 providers probed; failed: p",
    ])  # fmt: skip


def test_a_refused_key_and_a_missing_model_fail(tmp_path: Path, server: Upstream) -> None:
    def gate(request: Received) -> Any:
        if request.method == "POST" and request.json()["model"] == "gone":
            return openai_upstream.error_reply(404, "The model `gone` does not exist", code="model_not_found")
        if request.method == "POST":
            return openai_upstream.error_reply(401, "Incorrect API key provided.", code="invalid_api_key")
        return None

    server.gate = gate
    text = routes(server.url, "openai-chat") + block("q", "openai-chat", server.url, "gone")
    status, out = deep(tmp_path, server, Capable(), text)
    assert (status, [line for line in lines(out) if "FAILED" in line]) == (1, [
        "p, deepseek-reasoner: 2 of 10 requests sent; FAILED: the key was refused: HTTP 401: Incorrect API key "
        "provided.",
        "q, gone: 2 of 10 requests sent; FAILED: model gone not found: HTTP 404: The model `gone` does not exist",
    ])  # fmt: skip


def test_no_key_is_ever_printed(tmp_path: Path, server: Upstream) -> None:
    """An upstream that quotes the key it was sent, in its refusals and in its answers."""
    key = "sk-distinctive-key-0123456789-9z9z"

    def gate(request: Received) -> Any:
        if request.method == "POST" and "image_url" in request.body.decode():
            return openai_upstream.error_reply(400, f"image_url refused for {request.headers['authorization']}")
        return None

    server.gate = gate
    text = routes(server.url, "openai-chat", key="LEAKY_KEY")
    ENV["LEAKY_KEY"] = key
    try:
        for as_json in (False, True):
            status, out = deep(tmp_path, server, Capable(), text, as_json=as_json)
            assert status == 0 and key not in out and "9z9z" in out
            assert "Bearer main…9z9z" in out
    finally:
        del ENV["LEAKY_KEY"]


def test_what_it_will_send_is_printed_before_it_sends_anything(tmp_path: Path, server: Upstream) -> None:
    class Out(io.StringIO):
        def __init__(self) -> None:
            super().__init__()
            self.sent_before: list[int] = []

        def write(self, text: str) -> int:
            self.sent_before.append(len(server.received))
            return super().write(text)

    server.reply = Capable().reply  # type: ignore[assignment]
    out = Out()
    check.run(write(tmp_path, routes(server.url, "gemini", key="GEMINI_KEY")), False, False, ENV, out,
              check.Deep(timeout=5))  # fmt: skip
    assert out.sent_before == [0, 8]
    assert lines(out.getvalue())[:4] == intro(tmp_path, "gemini", PLAN, 8)


def test_passthrough_has_nothing_to_probe_and_a_provider_without_a_model_is_not_checked(
    tmp_path: Path, server: Upstream,
) -> None:
    text = f"""
providers:
  anthropic: {{protocol: anthropic, base_url: "{server.url}", auth: passthrough}}
  local: {{protocol: openai-chat, base_url: "{server.url}/local/v1", auth: none}}
routes:
  - {{match: "local-*", provider: local}}
default: {{provider: anthropic}}
"""
    status, out = deep(tmp_path, server, Capable(), text)
    assert (status, lines(out)) == (3, [
        f"{tmp_path / 'routes.yaml'}: valid", "",
        "deep check of anthropic (anthropic): nothing to probe (auth: passthrough)",
        "deep check of local (openai-chat): not probed, no model named", "",
        "anthropic: nothing to probe: auth: passthrough forwards Claude Code's own requests to Anthropic unchanged, "
        "with your own login", "",
        "local: not probed: routes.yaml names no model for it; give --model NAME, or add one to providers.local.models",
        "",
        "deep check: 0 of 2 providers probed; NOT CHECKED: local; nothing to probe: anthropic",
    ])  # fmt: skip
    assert server.received == []
    status, out = deep(tmp_path, server, Capable(), text, provider="anthropic")
    assert (status, lines(out)[-1]) == (0, "deep check: 0 of 1 providers probed; nothing to probe: anthropic")
    # A keyless local server: no credential header at all.
    status, out = deep(tmp_path, server, Capable(), text, provider="local", model="qwen3-coder:30b")
    assert status == 0 and "local, qwen3-coder:30b: 10 of 10 requests sent" in out
    assert all("authorization" not in r.headers for r in server.received)
    assert "    - name: qwen3-coder:30b" in lines(out)


def test_provider_and_model_narrow_it(tmp_path: Path, server: Upstream, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    server.reply = Capable().reply  # type: ignore[assignment]
    text = routes(server.url, "openai-chat") + f"""  other:
    protocol: gemini
    base_url: {server.url}/v1beta
    credentials: [{{label: main, key: "${{GEMINI_KEY}}"}}]
routes:
  - {{match: "claude-*", provider: p, model: deepseek-chat}}
aliases:
  fast: claude-haiku-4-5
"""
    path = write(tmp_path, text)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    # A client's name goes where the gateway routes it (through aliases), as the route's model.
    assert cli.main(["check", "--deep", "--model", "fast", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "deep check of p (openai-chat), model deepseek-chat, credential main: at most 10 requests" in out
    assert {r.json()["model"] for r in server.received if r.method == "POST"} == {"deepseek-chat"}
    assert "other" not in out.split("deep check:")[-1]
    # With --provider, the model is sent as written; without --model, its first model.
    assert cli.main(["check", "--deep", "--provider", "p", "--model", "deepseek-v4", "--config", str(path)]) == 0
    assert "p, deepseek-v4: 10 of 10 requests sent" in capsys.readouterr().out
    for argv, said in (
        (["--deep", "--provider", "nope"], "modelmux: check: --provider 'nope' is not a provider in routes.yaml; "
                                           "known: p, other"),
        (["--deep", "--model", "gpt-9"], "modelmux: check: --model 'gpt-9' matches no route in routes.yaml; add "
                                         "--provider NAME to send it to that provider as written"),
        (["--provider", "p"], "modelmux: check: --provider and --model narrow --deep; add --deep"),
        (["--deep", "--offline"], "modelmux: check: --deep sends requests; it cannot be --offline"),
    ):  # fmt: skip
        assert cli.main(["check", *argv, "--config", str(path)]) == 2
        assert capsys.readouterr().err.strip() == said


def test_json(tmp_path: Path, server: Upstream) -> None:
    capable = Capable(max_output=8192, documents=False)
    status, out = deep(tmp_path, server, capable, routes(server.url, "openai-chat"), as_json=True)
    document = json.loads(out)
    assert (status, document["ok"], document["exit_status"], document["problems"]) == (0, True, 0, [])
    assert document["plan"] == [f"deep check of p (openai-chat), model deepseek-reasoner, credential main: at most "
                                f"10 requests, each waiting at most 5 s: {CHAT_PLAN}"]  # fmt: skip
    [report] = document["deep"]
    assert {k: report[k] for k in ("provider", "protocol", "model", "credential", "sent", "failed", "checked",
                                   "complete", "provider_lines")} == {
        "provider": "p", "protocol": "openai-chat", "model": "deepseek-reasoner", "credential": "main", "sent": 10,
        "failed": False, "checked": True, "complete": True, "provider_lines": ["max_tokens_limit: 8192"]}
    assert report["findings"][2] == {"capability": "max output", "found": "8192", "answered": True,
                                     "evidence": "HTTP 400: Invalid max_tokens value, the valid range of max_tokens "
                                                 "is [1, 8192]"}  # fmt: skip
    assert report["model_lines"][:2] == ["- name: deepseek-reasoner", "  max_output: 8192"]
    assert document["summary"] == "deep check: 1 of 1 providers probed; all answered"


# -- the pure parts ---------------------------------------------------------------------


@pytest.mark.parametrize(("message", "output", "window"), [
    ("max_tokens is too large: 100000000. This model supports at most 16384 completion tokens, whereas you "
     "provided 100000000.", 16384, None),
    ("Invalid max_tokens value, the valid range of max_tokens is [1, 8192]", 8192, None),
    ("`max_tokens` must be less than or equal to `32768`, the maximum value for `max_tokens` is less than the "
     "`context_window` for this model", 32768, None),
    ("The parameter `max_completion_tokens` specified in the request are not valid: integer above maximum value, "
     "expected a value <= 12288, but got 100000000 instead.", 12288, None),
    ("max_tokens: 100000000 > 64000, which is the maximum allowed number of output tokens for claude-sonnet-4-5",
     64000, None),
    ("Unable to submit request because it has a maxOutputTokens value of 100000000 but the supported range is from "
     "1 (inclusive) to 65537 (exclusive). Update the value and try again.", 65536, None),
    ("'max_tokens' or 'max_completion_tokens' is too large: 100000000. This model's maximum context length is 64001 "
     "tokens and your request has 24 input tokens (100000000 > 64001 - 24).", None, 64001),
    ("This model's maximum context length is 8192 tokens. However, you requested 100000064 tokens (64 in the "
     "messages, 100000000 in the completion).", None, 8192),
    ("This request requires more credits, or fewer max_tokens. You requested up to 100000000 tokens, but can only "
     "afford 3919.", None, None),  # OpenRouter's credit check: no limit in it
])  # fmt: skip
def test_limits_named_in_refusals(message: str, output: int | None, window: int | None) -> None:
    assert (limits.max_output(message, requests.ABSURD_TOKENS), limits.context_window(message)) == (output, window)


def test_readings_of_whole_answers() -> None:
    """A server that ignored `stream` answers one JSON body; it is read as one event."""
    chat = openai_upstream.completion(None, tool_calls=[openai_upstream.tool_call("call_1", "get_time", {"city": "x"})],
                                      reasoning="thinking it over", reasoning_field="reasoning")  # fmt: skip
    reading = readings.read("openai-chat", json.dumps(chat))
    assert (reading.usage, reading.reasoning, reading.thought, [(c.id, c.name) for c in reading.calls]) == (
        True, ["reasoning"], "thinking it over", [("call_1", "get_time")])
    message = {"type": "message", "content": [{"type": "thinking", "thinking": "hm", "signature": "s"},
                                              {"type": "text", "text": "OK"}], "usage": {"output_tokens": 3}}
    reading = readings.read("anthropic", json.dumps(message))
    assert (reading.usage, reading.reasoning, reading.text) == (True, ["thinking blocks"], "OK")
    assert readings.read("gemini", "<html>oops</html>").error == "not JSON and not an event stream: '<html>oops</html>'"


def test_the_attachments_are_what_they_claim() -> None:
    assert media.image_dimensions(requests.PNG) == (16, 16)
    assert media.pdf_page_count(requests.PDF) == 1
    assert b"(PELICAN) Tj" in requests.PDF and requests.PDF.endswith(b"%%EOF\n")
    assert len(requests.PNG) < 100 and len(requests.PDF) < 600

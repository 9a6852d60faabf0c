"""The real Claude Code CLI, started with the launcher's environment, through the real
gateway to a fake OpenAI Chat Completions upstream: a whole agent turn (a streamed tool
call, Claude Code running it, the result going back as a `role: tool` message, the
answer), translated both ways."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gateway import Gateway
from openai_upstream import openai_like, sse, text_chunks, tool_call_chunks
from test_claude_code import ClaudeCode, claude_binary, claude_code, mentions, routes_yaml
from test_claude_code import _body as body
from upstream import Behaviour, Received, Stream, Upstream

from modelmux.cli.launcher import PLACEHOLDER_TOKEN

pytestmark = pytest.mark.claude_code

OPENAI_KEY = "sk-fake-openai-e2e-5b8e1d"
PROFILE = "e2e-openai"
UPSTREAM_MODELS = {"opus": "gpt-e2e-large", "sonnet": "gpt-e2e-medium", "haiku": "gpt-e2e-small"}
CHAT_PATH = "/v1/chat/completions"
MARKER = f"modelmux-openai-{secrets.token_hex(4)}"
PROMPT = f"Run the shell command `echo {MARKER}` with the Bash tool and tell me what it printed."
CALL_ID = "call_e2e_bash_1"
FINAL_TEXT = f"The command printed {MARKER}."
REASONING = "The user wants the command run; Bash will do."
# Keys only Anthropic's API knows; none may reach an OpenAI upstream.
ANTHROPIC_ONLY_KEYS = {"cache_control", "thinking", "signature", "output_config", "context_management", "top_k",
                       "metadata", "system", "input_schema", "tool_use_id", "is_error", "redacted_thinking"}
OPENAI_ROLES = {"system", "user", "assistant", "tool"}
OPENAI_PART_TYPES = {"text", "image_url", "function"}


def openai_vendor(upstream_url: str, provider_options: str) -> str:
    return f"""    protocol: openai-chat
    base_url: {upstream_url}/v1
    credentials:
      - {{label: fake-openai, key: "${{FAKE_OPENAI_KEY}}"}}
{provider_options}"""


@pytest.fixture
def claude(upstream: Upstream, tmp_path: Path) -> Iterator[Callable[..., ClaudeCode]]:
    """`claude(provider_options_yaml)` → Claude Code as `modelmux run e2e-openai` starts it,
    in a throwaway HOME, with the gateway running."""
    binary = claude_binary()
    gateways: list[Gateway] = []

    def start(provider_options: str = "") -> ClaudeCode:
        gateway = Gateway(tmp_path, "", env={"FAKE_OPENAI_KEY": OPENAI_KEY})
        # Its port is known only now, and server.port is where the launcher points Claude Code.
        provider = openai_vendor(upstream.url, provider_options)
        gateway.config.write_text(routes_yaml(gateway.port, provider, PROFILE, UPSTREAM_MODELS))
        code = claude_code(binary, gateway, PROFILE, {"FAKE_OPENAI_KEY": OPENAI_KEY}, tmp_path)
        gateways.append(gateway.start())
        return code

    yield start
    for gateway in gateways:
        gateway.stop()


def chat_requests(upstream: Upstream) -> list[Received]:
    return [r for r in upstream.received if r.method == "POST" and r.path.split("?")[0] == CHAT_PATH]


def tool_messages(request: Received) -> list[dict[str, Any]]:
    return [m for m in body(request).get("messages", []) if m.get("role") == "tool"]


def report(result: Any, upstream: Upstream) -> str:
    """What went wrong, for the assertion message: output and a redacted request log."""
    lines = [f"exit {result.returncode}", f"stdout: {result.stdout[-2000:]}", f"stderr: {result.stderr[-2000:]}"]
    for request in upstream.received:
        roles = [m.get("role") for m in body(request).get("messages", [])]
        lines.append(f"{request.method} {request.path} model={body(request).get('model')} roles={roles}")
    return "\n".join(lines)


def agent(reasoning: str | None = None) -> Callable[[Received], Behaviour]:
    """The fake model: the prompt's request gets a streamed Bash call; the request carrying
    its result as a tool message gets the final text; anything else the default answer."""

    def reply(request: Received) -> Behaviour:
        data = body(request)
        if request.path.split("?")[0] != CHAT_PATH or not mentions(request, PROMPT) or not data.get("stream"):
            return openai_like(request)
        model = data["model"]
        if any(m.get("tool_call_id") == CALL_ID for m in tool_messages(request)):
            return Stream(sse(text_chunks(FINAL_TEXT, model=model, reasoning=reasoning)))
        if "Bash" in {tool.get("function", {}).get("name") for tool in data.get("tools", [])}:
            arguments = {"command": f"echo {MARKER}", "description": "Print the marker"}
            return Stream(sse(tool_call_chunks(CALL_ID, "Bash", arguments, model=model, reasoning=reasoning)))
        return openai_like(request)

    return reply


def anthropic_leftovers(value: Any, where: str = "body") -> list[str]:
    """Everything in an upstream request body that belongs to Anthropic's API, not OpenAI's.
    Tool schemas are the tools' own data (Claude Code's have a `metadata` property): skipped."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ANTHROPIC_ONLY_KEYS:
                found.append(f"{where}.{key}")
            if key != "parameters":
                found += anthropic_leftovers(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += anthropic_leftovers(item, f"{where}[{i}]")
    return found


def assert_sent_to_openai(request: Received, path: str, key: str) -> str:
    """A POST to `path` with the provider's `key` and none of the client's or modelmux's
    own headers; where it went, for assertion messages."""
    where = f"{request.method} {request.path}"
    headers = request.headers
    assert (request.method, request.path) == ("POST", path), f"{where}: not {path}"
    assert headers.get("authorization") == f"Bearer {key}", f"{where}: not the provider's key"
    for name in ("x-api-key", "anthropic-version", "anthropic-beta"):
        assert name not in headers, f"{where}: {name} reached an OpenAI upstream"
    assert not [n for n in headers if n.startswith("x-modelmux-")], f"{where}: modelmux headers leaked"
    assert not [n for n, v in headers.items() if PLACEHOLDER_TOKEN in v], f"{where}: the placeholder leaked"
    return where


def assert_upstream_saw_only_openai(upstream: Upstream) -> None:
    upstream_models = set(UPSTREAM_MODELS.values())
    assert upstream.received, "the upstream received nothing"
    for request in upstream.received:
        where = assert_sent_to_openai(request, CHAT_PATH, OPENAI_KEY)
        data = body(request)
        assert data.get("model") in upstream_models, f"{where}: model {data.get('model')!r}"
        assert not anthropic_leftovers(data), f"{where}: {anthropic_leftovers(data)}"
        for message in data.get("messages", []):
            assert message.get("role") in OPENAI_ROLES, f"{where}: role {message.get('role')!r}"
            if isinstance(message.get("content"), list):
                types = {part.get("type") for part in message["content"]}
                assert types <= OPENAI_PART_TYPES, f"{where}: content part types {types}"
        for tool in data.get("tools", []):
            assert tool.get("type") == "function" and "parameters" in tool.get("function", {}), f"{where}: {tool}"


def assert_the_tool_ran(upstream: Upstream, details: str) -> list[dict[str, Any]]:
    """The request after the tool call carries the call and Bash's real output; its messages."""
    answered = [r for r in chat_requests(upstream) if any(m.get("tool_call_id") == CALL_ID for m in tool_messages(r))]
    assert answered, f"no request carried a role: tool message for {CALL_ID}\n{details}"
    messages = body(answered[-1])["messages"]
    result = next(m for m in messages if m.get("role") == "tool" and m.get("tool_call_id") == CALL_ID)
    content = result["content"] if isinstance(result["content"], str) else json.dumps(result["content"])
    assert MARKER in content and not content.startswith("Error"), f"{result}\n{details}"
    call_at = next(i for i, m in enumerate(messages) if CALL_ID in json.dumps(m.get("tool_calls") or []))
    call = messages[call_at]["tool_calls"][0]
    assert messages[call_at + 1] == result, f"the tool result does not directly follow its call: {messages}"
    assert (call["type"], call["function"]["name"]) == ("function", "Bash"), call
    assert json.loads(call["function"]["arguments"])["command"] == f"echo {MARKER}", call
    return messages


def test_agent_turn_with_a_tool_call(claude: Callable[..., ClaudeCode], upstream: Upstream):
    upstream.reply = agent()
    result = claude().run(PROMPT, "--allowedTools", "Bash")
    details = report(result, upstream)
    assert result.returncode == 0, details
    assert FINAL_TEXT in result.stdout, details
    assert_the_tool_ran(upstream, details)
    first = next(r for r in chat_requests(upstream) if mentions(r, PROMPT))
    assert body(first)["stream"] is True and body(first)["stream_options"] == {"include_usage": True}, details
    assert body(first)["messages"][0]["role"] == "system", details  # Claude Code's system blocks, joined
    assert isinstance(body(first)["messages"][0]["content"], str), details
    assert_upstream_saw_only_openai(upstream)


def test_agent_turn_with_reasoning(claude: Callable[..., ClaudeCode], upstream: Upstream):
    """A thinking model streams reasoning_content before its tool call and its answer;
    the provider asks for reasoning_effort and wants the reasoning back in the history."""
    upstream.reply = agent(reasoning=REASONING)
    result = claude("    reasoning_effort: true\n    reasoning_history: true").run(PROMPT, "--allowedTools", "Bash")
    details = report(result, upstream)
    assert result.returncode == 0, details
    assert FINAL_TEXT in result.stdout, details
    messages = assert_the_tool_ran(upstream, details)
    call = next(m for m in messages if CALL_ID in json.dumps(m.get("tool_calls") or []))
    if "reasoning_content" in call:  # Claude Code sent its thinking block back
        assert call["reasoning_content"] == REASONING, call
    first = next(r for r in chat_requests(upstream) if mentions(r, PROMPT))
    assert body(first).get("reasoning_effort") in (None, "low", "medium", "high"), details
    assert_upstream_saw_only_openai(upstream)

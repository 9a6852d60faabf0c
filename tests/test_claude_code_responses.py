"""The real Claude Code CLI, started with the launcher's environment, through the real
gateway to a fake OpenAI Responses upstream: a whole agent turn (a streamed
function_call, Claude Code running it, the result going back as a
function_call_output item, the answer), and a turn whose reasoning comes back as
thinking and goes upstream again, encrypted, on the next request."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gateway import Gateway
from responses_upstream import events, function_call, is_responses, message, reasoning, responses_like, sse
from test_claude_code import ClaudeCode, claude_binary, claude_code, routes_yaml
from test_claude_code import _body as body
from test_claude_code_openai import CALL_ID, FINAL_TEXT, MARKER, PROMPT, anthropic_leftovers, assert_sent_to_openai
from upstream import Behaviour, Received, Stream, Upstream

pytestmark = pytest.mark.claude_code

OPENAI_KEY = "sk-fake-responses-e2e-9c2d4a"
PROFILE = "e2e-responses"
# Each slot an effort of its own, written into the model name: the request says which slot it came from.
UPSTREAM_MODELS = {"opus": "gpt-5.3-codex(xhigh)", "sonnet": "gpt-5.2(high)", "haiku": "gpt-5-mini(low)"}
EFFORTS = {"gpt-5.3-codex": "xhigh", "gpt-5.2": "high", "gpt-5-mini": "low"}
RESPONSES_PATH = "/v1/responses"
SUMMARY = "The user wants the command run; Bash will do."
ENCRYPTED = f"gAAAA-e2e-{secrets.token_hex(8)}"
INPUT_TYPES = {"message", "function_call", "function_call_output", "reasoning"}
PART_TYPES = {"input_text", "output_text", "input_image", "input_file"}


def responses_vendor(upstream_url: str) -> str:
    return f"""    protocol: openai-responses
    base_url: {upstream_url}/v1
    credentials:
      - {{label: fake-openai, key: "${{FAKE_OPENAI_KEY}}"}}"""


@pytest.fixture
def claude(upstream: Upstream, tmp_path: Path) -> Iterator[ClaudeCode]:
    """Claude Code as `modelmux run e2e-responses` starts it, in a throwaway HOME, with the
    gateway running."""
    binary = claude_binary()
    gateway = Gateway(tmp_path, "", env={"FAKE_OPENAI_KEY": OPENAI_KEY})
    # Its port is known only now, and server.port is where the launcher points Claude Code.
    gateway.config.write_text(routes_yaml(gateway.port, responses_vendor(upstream.url), PROFILE, UPSTREAM_MODELS))
    code = claude_code(binary, gateway, PROFILE, {"FAKE_OPENAI_KEY": OPENAI_KEY}, tmp_path)
    with gateway:
        yield code


def inputs(request: Received) -> list[dict[str, Any]]:
    return body(request).get("input") or []


def mentions(request: Received, text: str) -> bool:
    return text in json.dumps(inputs(request))


def prompt_requests(upstream: Upstream) -> list[Received]:
    return [r for r in upstream.received if is_responses(r) and mentions(r, PROMPT)]


def agent(with_reasoning: bool) -> Callable[[Received], Behaviour]:
    """The fake model: the prompt's request gets a streamed Bash call (after its reasoning,
    if any); the request carrying the call's output the final text; anything else the
    default answer."""

    def reply(request: Received) -> Behaviour:
        data = body(request)
        if not is_responses(request) or not mentions(request, PROMPT) or not data.get("stream"):
            return responses_like(request)
        thought = [reasoning(SUMMARY, encrypted=ENCRYPTED, id="rs_e2e_1")] if with_reasoning else []
        if any(i.get("type") == "function_call_output" and i.get("call_id") == CALL_ID for i in inputs(request)):
            return Stream(sse(events([message(FINAL_TEXT)], model=data["model"])))
        if "Bash" in {tool.get("name") for tool in data.get("tools", [])}:
            call = function_call(CALL_ID, "Bash", {"command": f"echo {MARKER}", "description": "Print the marker"})
            return Stream(sse(events([*thought, call], model=data["model"])))
        return responses_like(request)

    return reply


def report(result: Any, upstream: Upstream) -> str:
    """What went wrong, for the assertion message: output and a redacted request log."""
    lines = [f"exit {result.returncode}", f"stdout: {result.stdout[-3000:]}", f"stderr: {result.stderr[-2000:]}"]
    for request in upstream.received:
        kinds = [i.get("type") for i in inputs(request)]
        lines.append(f"{request.method} {request.path} model={body(request).get('model')} input={kinds}")
    return "\n".join(lines)


def assert_upstream_saw_only_responses(upstream: Upstream) -> None:
    assert upstream.received, "the upstream received nothing"
    for request in upstream.received:
        where = assert_sent_to_openai(request, RESPONSES_PATH, OPENAI_KEY)
        data = body(request)
        assert data["model"] in EFFORTS, f"{where}: model {data['model']!r}"
        # The slot's NAME(EFFORT) wins over whatever thinking Claude Code asked for.
        assert data["reasoning"] == {"effort": EFFORTS[data["model"]], "summary": "auto"}, f"{where}: {data['reasoning']}"
        assert (data["store"], data["include"]) == (False, ["reasoning.encrypted_content"]), where
        assert not anthropic_leftovers(data), f"{where}: {anthropic_leftovers(data)}"
        for item in data["input"]:
            assert item.get("type") in INPUT_TYPES, f"{where}: input item {item}"
            if isinstance(item.get("content"), list):
                types = {part.get("type") for part in item["content"]}
                assert types <= PART_TYPES, f"{where}: content part types {types}"
        for tool in data.get("tools", []):
            assert (tool["type"], tool["strict"]) == ("function", False) and "parameters" in tool, f"{where}: {tool}"


def assert_the_tool_ran(upstream: Upstream, details: str) -> list[dict[str, Any]]:
    """The request after the call carries it and Bash's real output right after it; its input."""
    answered = [r for r in prompt_requests(upstream)
                if any(i.get("type") == "function_call_output" and i.get("call_id") == CALL_ID for i in inputs(r))]
    assert answered, f"no request carried a function_call_output for {CALL_ID}\n{details}"
    items = inputs(answered[-1])
    at = next(i for i, item in enumerate(items) if item.get("type") == "function_call" and item["call_id"] == CALL_ID)
    call, output = items[at], items[at + 1]
    assert (call["name"], json.loads(call["arguments"])["command"]) == ("Bash", f"echo {MARKER}"), call
    assert (output["type"], output["call_id"]) == ("function_call_output", CALL_ID), items
    assert MARKER in output["output"] and not output["output"].startswith("Error"), output
    return items


def test_agent_turn_with_a_tool_call(claude: ClaudeCode, upstream: Upstream):
    upstream.reply = agent(with_reasoning=False)
    result = claude.run(PROMPT, "--allowedTools", "Bash")
    details = report(result, upstream)
    assert result.returncode == 0, details
    assert FINAL_TEXT in result.stdout, details
    assert_the_tool_ran(upstream, details)
    first = prompt_requests(upstream)[0]
    assert body(first)["stream"] is True, details
    assert isinstance(body(first).get("instructions"), str) and body(first)["instructions"], details
    assert_upstream_saw_only_responses(upstream)


def test_agent_turn_with_reasoning(claude: ClaudeCode, upstream: Upstream):
    """The call comes after a reasoning item: Claude Code is shown its summary as thinking
    and sends the block back, so the next request carries the encrypted reasoning
    (without its id) right before the call it led to."""
    upstream.reply = agent(with_reasoning=True)
    result = claude.run(PROMPT, "--allowedTools", "Bash", "--output-format", "stream-json", "--verbose")
    details = report(result, upstream)
    assert result.returncode == 0, details
    shown = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert FINAL_TEXT in shown[-1].get("result", ""), details
    thinking = [block for event in shown if event.get("type") == "assistant"
                for block in event["message"]["content"] if block.get("type") == "thinking"]
    assert [block["thinking"] for block in thinking] == [SUMMARY], details
    assert thinking[0]["signature"].startswith("modelmux:openai-responses:v1:"), details
    items = assert_the_tool_ran(upstream, details)
    at = next(i for i, item in enumerate(items) if item.get("type") == "function_call")
    assert items[at - 1] == {"type": "reasoning", "summary": [], "encrypted_content": ENCRYPTED}, items
    assert ENCRYPTED not in json.dumps(body(prompt_requests(upstream)[0])), details
    assert_upstream_saw_only_responses(upstream)

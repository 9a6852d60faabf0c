"""The real Claude Code CLI, started with the launcher's environment, through the real
gateway to a fake Gemini upstream: a whole agent turn (a Gemini 3 thought and a Bash
call, both signed, the call with Gemini's id; Claude Code running it; the next request
carrying the signatures back on their parts and the functionResponse named Bash with
the call's id; the answer), and a signed final answer that is `claude -p`'s result
and goes back in the next turn's history."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gateway import Gateway
from gemini_upstream import (
    CALL_SIGNATURE, SIGNATURE, call, chunks, gemini_like, model_of, rate_limited, sse, streamed, text, thought, usage,
)
from test_claude_code import ClaudeCode, claude_binary, claude_code, routes_yaml
from test_claude_code import _body as body
from test_claude_code_openai import anthropic_leftovers
from upstream import Behaviour, Received, Stream, Upstream

from modelmux.cli.launcher import PLACEHOLDER_TOKEN
from modelmux.translate.thought_signatures import DUMMY

pytestmark = pytest.mark.claude_code

GEMINI_KEY = "AIzaSyFake-e2e-gemini-ffffffffffff6"
LIMITED_KEY = "AIzaSyFake-e2e-limited-99999999999"
PROFILE = "e2e-gemini"
UPSTREAM_MODELS = {"opus": "gemini-3-pro-preview", "sonnet": "gemini-3-pro-preview", "haiku": "gemini-2.5-flash-lite"}
MARKER = f"modelmux-gemini-{secrets.token_hex(4)}"
PROMPT = f"Run the shell command `echo {MARKER}` with the Bash tool and tell me what it printed."
THOUGHT = "The user wants the command run; Bash will do."
FINAL_TEXT = f"The command printed {MARKER}."
CALL_ID = "bash0call"  # Gemini's id for the call
TEXT_SIGNATURE = "Ei0KKwHR7YpvbWTX4h/dD+lo5Cr8bQ9lwqLgkQ=="  # on the last (empty) text part of an answer
QUESTION = f"What is the capital of France? ({MARKER})"
ANSWER = "The capital of France is Paris."
FOLLOW_UP = f"And of Italy? ({MARKER})"


def gemini_vendor(upstream_url: str, pooled: bool) -> str:
    limited = '\n      - {label: fake-limited, key: "${FAKE_LIMITED_KEY}"}' if pooled else ""
    return f"""    protocol: gemini
    base_url: {upstream_url}/v1beta
    credentials:{limited}
      - {{label: fake-gemini, key: "${{FAKE_GEMINI_KEY}}"}}"""


@pytest.fixture(params=["one key", "failover"])
def claude(upstream: Upstream, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ClaudeCode]:
    """Claude Code as `modelmux run e2e-gemini` starts it, in a throwaway HOME, with the
    gateway running: to one key (sent by mitmproxy itself), or to a pool whose first key
    answers RESOURCE_EXHAUSTED (sent through the relay). Routes keep `response_model:
    requested`, so the model of Claude Code's messages is the one it asks for and it
    keeps their signed thinking."""
    binary = claude_binary()
    pooled = request.param == "failover"
    keys = {"FAKE_GEMINI_KEY": GEMINI_KEY, "FAKE_LIMITED_KEY": LIMITED_KEY}
    gateway = Gateway(tmp_path, "", env=keys)
    gateway.config.write_text(routes_yaml(gateway.port, gemini_vendor(upstream.url, pooled), PROFILE, UPSTREAM_MODELS))
    if pooled:
        upstream.gate = lambda r: rate_limited() if r.headers.get("x-goog-api-key") == LIMITED_KEY else None
    code = claude_code(binary, gateway, PROFILE, keys, tmp_path)
    with gateway:
        yield code
    if pooled:
        limited = [r for r in upstream.received if r.headers.get("x-goog-api-key") == LIMITED_KEY]
        assert 1 <= len(limited) <= 2, "the exhausted key should sit out its retryDelay (two requests may race)"


def contents(request: Received) -> list[dict[str, Any]]:
    return body(request).get("contents", [])


def asks(request: Received) -> bool:
    return PROMPT in json.dumps(contents(request))


def responses(request: Received) -> list[dict[str, Any]]:
    return [p["functionResponse"] for c in contents(request) for p in c["parts"] if "functionResponse" in p]


def declared(request: Received) -> set[str]:
    return {d["name"] for tool in body(request).get("tools", []) for d in tool.get("functionDeclarations", [])}


def agent(request: Received) -> Behaviour:
    """The fake model: the prompt's streamed request gets a signed thought and a signed
    Bash call; the one carrying Bash's result the final text; anything else the default."""
    model = model_of(request)
    if model is None or not streamed(request) or not asks(request):
        return gemini_like(request)
    if any(r["name"] == "Bash" for r in responses(request)):
        return Stream(sse(chunks(text(FINAL_TEXT), model=model)))
    if "Bash" in declared(request):
        bash = call("Bash", {"command": f"echo {MARKER}", "description": "Print the marker"}, CALL_SIGNATURE, CALL_ID)
        return Stream(sse(chunks(thought(THOUGHT, SIGNATURE), bash, model=model,
                                 usage=usage(prompt=900, candidates=30, thoughts=12))))
    return gemini_like(request)


def report(result: Any, upstream: Upstream) -> str:
    """What went wrong, for the assertion message: output and the requests' shapes."""
    lines = [f"exit {result.returncode}", f"stdout: {result.stdout[-2000:]}", f"stderr: {result.stderr[-2000:]}"]
    for request in upstream.received:
        roles = [c.get("role") for c in contents(request)]
        lines.append(f"{request.method} {request.path} roles={roles} tools={len(declared(request))}")
    return "\n".join(lines)


def assert_upstream_saw_only_gemini(upstream: Upstream) -> None:
    assert upstream.received, "the upstream received nothing"
    for request in upstream.received:
        where = f"{request.method} {request.path}"
        assert model_of(request) in set(UPSTREAM_MODELS.values()), f"{where}: not a generateContent of a route's model"
        assert not streamed(request) or request.path.endswith("?alt=sse"), where
        headers = request.headers
        assert headers.get("x-goog-api-key") in (GEMINI_KEY, LIMITED_KEY), f"{where}: not the provider's key"
        for name in ("x-api-key", "authorization", "anthropic-version", "anthropic-beta"):
            assert name not in headers, f"{where}: {name} reached Gemini"
        assert not [n for n in headers if n.startswith("x-modelmux-")], f"{where}: modelmux headers leaked"
        assert not [n for n, v in headers.items() if PLACEHOLDER_TOKEN in v], f"{where}: the placeholder leaked"
        data = body(request)
        assert set(data) <= {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig"}, where
        assert not anthropic_leftovers(data), f"{where}: {anthropic_leftovers(data)}"
        for content in data["contents"]:
            assert content["role"] in ("user", "model"), f"{where}: role {content['role']!r}"
        roles = [c["role"] for c in data["contents"]]
        assert all(a != b for a, b in zip(roles, roles[1:])), f"{where}: turns do not alternate: {roles}"


def test_agent_turn_with_a_signed_tool_call(claude: ClaudeCode, upstream: Upstream):
    upstream.reply = agent
    result = claude.run(PROMPT, "--allowedTools", "Bash")
    details = report(result, upstream)
    assert result.returncode == 0, details
    assert FINAL_TEXT in result.stdout, details
    answered = [r for r in upstream.received if any(x["name"] == "Bash" for x in responses(r))]
    assert answered, f"no request carried a functionResponse for Bash\n{details}"
    turns = contents(answered[-1])
    call_at = next(i for i, c in enumerate(turns) if any("functionCall" in p for p in c["parts"]))
    model_turn, result_turn = turns[call_at], turns[call_at + 1]
    [signed_call] = [p for p in model_turn["parts"] if "functionCall" in p]
    # Gemini's own signature, back on its call byte for byte (not the stand-in for lost ones).
    assert signed_call == {"functionCall": {"name": "Bash", "args": {"command": f"echo {MARKER}",
                                                                    "description": "Print the marker"}, "id": CALL_ID},
                           "thoughtSignature": CALL_SIGNATURE}, model_turn  # fmt: skip
    assert DUMMY not in json.dumps(turns), model_turn
    thoughts = [p for p in model_turn["parts"] if p.get("thought")]
    assert thoughts == [{"text": THOUGHT, "thought": True, "thoughtSignature": SIGNATURE}], model_turn
    assert result_turn["role"] == "user", turns
    [bash_result] = [p["functionResponse"] for p in result_turn["parts"] if "functionResponse" in p]
    assert bash_result["name"] == "Bash" and MARKER in bash_result["response"].get("output", ""), bash_result
    assert bash_result["id"] == CALL_ID, bash_result  # Gemini matches the response to its call by id
    first = next(r for r in upstream.received if asks(r) and "Bash" in declared(r))
    assert model_of(first) == "gemini-3-pro-preview" and streamed(first), details
    assert "systemInstruction" in body(first), details  # Claude Code's system prompt
    assert_upstream_saw_only_gemini(upstream)


def answering(request: Received) -> Behaviour:
    """The fake model: a Gemini 3 answer without calls to each question, thought and
    text, with the signature Gemini 3 puts on an answer's last part arriving in an
    empty text part at the end (its thought-signatures FAQ)."""
    model = model_of(request)
    if model is None or not streamed(request):
        return gemini_like(request)
    sent = json.dumps(contents(request))
    reply = "The capital of Italy is Rome." if FOLLOW_UP in sent else ANSWER if QUESTION in sent else None
    if reply is None:
        return gemini_like(request)
    return Stream(sse(chunks(thought(THOUGHT, SIGNATURE), text(reply), text("", TEXT_SIGNATURE), model=model)))


def test_a_signed_final_answer_is_the_result_and_goes_back_next_turn(claude: ClaudeCode, upstream: Upstream):
    """`claude -p` prints the last block's text: a block after the answer to carry its
    signature made it print nothing. The answer is the result; the next turn
    (--continue) sends the thought back signed, and the answer as it was."""
    upstream.reply = answering
    first = claude.run(QUESTION)
    details = report(first, upstream)
    assert first.returncode == 0, details
    assert first.stdout.strip() == ANSWER, details
    second = claude.run(FOLLOW_UP, "--continue")
    details = report(second, upstream)
    assert second.returncode == 0, details
    assert second.stdout.strip() == "The capital of Italy is Rome.", details
    [follow_up] = [r for r in upstream.received if streamed(r) and FOLLOW_UP in json.dumps(contents(r))]
    turns = contents(follow_up)
    asked = next(i for i, c in enumerate(turns) if QUESTION in json.dumps(c))
    assert [c["role"] for c in turns[asked:]] == ["user", "model", "user"], turns
    assert turns[asked + 1]["parts"] == [{"text": THOUGHT, "thought": True, "thoughtSignature": SIGNATURE},
                                         {"text": ANSWER}], turns  # fmt: skip
    assert FOLLOW_UP in json.dumps(turns[-1]) and TEXT_SIGNATURE not in follow_up.body.decode(), turns
    assert_upstream_saw_only_gemini(upstream)

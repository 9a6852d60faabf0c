"""The real Claude Code CLI, started with the launcher's environment, through the real
gateway to a fake vendor upstream: what a user of `modelmux run PROFILE` gets."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from gateway import REPO, Gateway
from upstream import Behaviour, Received, Reply, Stream, Upstream, anthropic_like, message, message_events, sse

from modelmux.cli.launcher import PLACEHOLDER_TOKEN, apply_environment, profile_environment
from modelmux.config import loader as modelmux_config

pytestmark = pytest.mark.claude_code

VENDOR_KEY = "sk-fake-vendor-e2e-7f3a9c"
LIMITED_KEY = "sk-fake-vendor-limited-2b8e41"
PROFILE = "e2e"
SLOTS = {"opus": "claude-e2e-opus", "sonnet": "claude-e2e-sonnet", "haiku": "claude-e2e-haiku"}
UPSTREAM_MODELS = {"opus": "fake-model-large", "sonnet": "fake-model-medium", "haiku": "fake-model-small"}
GREETING = "Hello from the fake upstream."
CLAUDE_TIMEOUT = 90  # seconds; a run takes a few, pytest's own timeout is 120
INSTALL_HINT = (
    "with Node.js 18+ installed, `./dev.sh test` installs it into .cache/claude-code; "
    "or `npm install -g @anthropic-ai/claude-code`, or set MODELMUX_CLAUDE=/path/to/claude"
)


def routes_yaml(
    port: int, provider: str, profile: str = PROFILE, upstream_models: dict[str, str] = UPSTREAM_MODELS
) -> str:
    """A profile whose slots route to the provider `fake` (given as YAML lines) as the upstream models."""
    routes = "\n".join(
        f"  - {{match: {SLOTS[slot]}, provider: fake, model: {upstream_models[slot]}}}" for slot in SLOTS
    )
    slots = ", ".join(f"{slot}: {name}" for slot, name in SLOTS.items())
    return f"""
server: {{port: {port}}}
providers:
  fake:
{provider}
routes:
{routes}
default: null
profiles:
  {profile}:
    slots: {{{slots}}}
    providers: [fake]
"""


def anthropic_vendor(upstream_url: str, pooled: bool = False) -> str:
    limited = '\n      - {label: fake-limited, key: "${FAKE_LIMITED_KEY}"}' if pooled else ""
    return f"""    protocol: anthropic
    base_url: {upstream_url}
    auth: "x-api-key: {{key}}"
    credentials:{limited}
      - {{label: fake-main, key: "${{FAKE_VENDOR_KEY}}"}}"""


def rate_limit_the_first_key(upstream: Upstream) -> None:
    """The pool's first credential answers every request 429, so each goes through the
    failover relay to the second: Claude Code must not notice."""
    limited = Reply(429, json.dumps({"type": "error", "error": {"type": "rate_limit_error", "message": "limit"}}).encode(),
                    {"content-type": "application/json", "retry-after": "600"})
    upstream.gate = lambda request: limited if request.headers.get("x-api-key") == LIMITED_KEY else None


def claude_binary() -> str:
    explicit = os.environ.get("MODELMUX_CLAUDE")
    if explicit:
        if not Path(explicit).is_file():
            pytest.fail(f"MODELMUX_CLAUDE={explicit} is not a file; point it at the `claude` executable")
        return explicit
    found = shutil.which("claude")
    if found is None:  # dev.sh's install, for a plain `pytest` after `./dev.sh test`
        found = shutil.which("claude", path=str(REPO / ".cache" / "claude-code" / "node_modules" / ".bin"))
    if found is None:
        pytest.skip(f"Claude Code CLI not installed (no MODELMUX_CLAUDE, no `claude` on PATH): {INSTALL_HINT}")
    return found


@dataclass
class ClaudeCode:
    """Runs `claude -p` as `modelmux run e2e` would, in a throwaway HOME."""

    binary: str
    env: dict[str, str]
    cwd: Path

    def run(self, prompt: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, "-p", prompt, "--output-format", "text", *args],
            env=self.env, cwd=self.cwd, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=CLAUDE_TIMEOUT,
        )  # fmt: skip


def claude_code(binary: str, gateway: Gateway, profile: str, environ: dict[str, str], tmp_path: Path) -> ClaudeCode:
    """Claude Code with the environment `modelmux run PROFILE` gives it, in a throwaway
    HOME; `environ` holds the variables the gateway's routes.yaml refers to."""
    config = modelmux_config.load(gateway.config, environ)
    # The developer's own Claude Code settings (a model, a key, Bedrock) must not leak in.
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_"))}
    values, unset = profile_environment(config, profile, base)
    assert values["ANTHROPIC_BASE_URL"] == gateway.url
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = apply_environment(base, values, unset)
    env.update({
        "HOME": str(home),
        "USERPROFILE": str(home),
        "CLAUDE_CONFIG_DIR": str(home / ".claude"),
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
    })  # fmt: skip
    return ClaudeCode(binary, env, work)


@pytest.fixture(params=["one key", "failover"])
def claude(upstream: Upstream, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ClaudeCode]:
    """Claude Code through the gateway: to a provider with one key (sent by mitmproxy
    itself), or to a pool whose first key is rate limited (sent through the relay)."""
    binary = claude_binary()
    pooled = request.param == "failover"
    keys = {"FAKE_VENDOR_KEY": VENDOR_KEY, "FAKE_LIMITED_KEY": LIMITED_KEY}
    gateway = Gateway(tmp_path, "", env=keys)
    # Its port is known only now, and server.port is where the launcher points Claude Code.
    gateway.config.write_text(routes_yaml(gateway.port, anthropic_vendor(upstream.url, pooled)))
    if pooled:
        rate_limit_the_first_key(upstream)
    code = claude_code(binary, gateway, PROFILE, keys, tmp_path)
    with gateway:
        yield code
    if pooled:
        limited = [r for r in upstream.received if r.headers.get("x-api-key") == LIMITED_KEY]
        assert 1 <= len(limited) <= 2, "the rate-limited key should sit out after its 429 (two requests may race)"


def report(result: subprocess.CompletedProcess[str], upstream: Upstream) -> str:
    """What went wrong, for the assertion message: output and a redacted request log."""
    lines = [f"exit {result.returncode}", f"stdout: {result.stdout[-2000:]}", f"stderr: {result.stderr[-2000:]}"]
    for request in upstream.received:
        headers = {k: ("<redacted>" if k in ("x-api-key", "authorization") else v) for k, v in request.headers.items()}
        lines.append(f"{request.method} {request.path} model={_body(request).get('model')} headers={headers}")
    return "\n".join(lines)


def _body(request: Received) -> dict[str, Any]:
    try:
        body = request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def messages_requests(upstream: Upstream) -> list[Received]:
    return [r for r in upstream.received if r.method == "POST" and r.path.split("?")[0] == "/v1/messages"]


def mentions(request: Received, text: str) -> bool:
    return text in json.dumps(_body(request).get("messages", []))


def assert_upstream_saw_only_the_vendor(upstream: Upstream) -> None:
    upstream_models = set(UPSTREAM_MODELS.values())
    for request in upstream.received:
        where = f"{request.method} {request.path}"
        headers = request.headers
        assert headers.get("x-api-key") in (VENDOR_KEY, LIMITED_KEY), f"{where}: x-api-key is not a vendor key"
        assert "authorization" not in headers, f"{where}: the client's Authorization reached the upstream"
        assert not [n for n in headers if n.startswith("x-modelmux-")], f"{where}: modelmux headers leaked"
        assert not [n for n, v in headers.items() if PLACEHOLDER_TOKEN in v], f"{where}: the placeholder leaked"
        if request.method == "POST":
            assert _body(request).get("model") in upstream_models, f"{where}: model {_body(request).get('model')!r}"


def test_prompt_through_gateway(claude: ClaudeCode, upstream: Upstream):
    result = claude.run("Say hello")
    details = report(result, upstream)
    assert result.returncode == 0, details
    assert GREETING in result.stdout, details
    main = [r for r in messages_requests(upstream) if mentions(r, "Say hello")]
    assert main, f"no POST /v1/messages carried the prompt\n{details}"
    assert _body(main[-1]).get("stream") is True, details
    assert_upstream_saw_only_the_vendor(upstream)


TOOL_USE_ID = "toolu_modelmux_e2e_1"
TOOL_FILE = "modelmux-e2e.txt"
TOOL_FILE_TEXT = "modelmux-tool-ok 4d1e"
FINAL_TEXT = "The file says modelmux-tool-ok."


def tool_use_events(model: str, name: str, tool_input: dict[str, Any]) -> list[bytes]:
    """An Anthropic stream whose one content block is a tool call, its input in two deltas."""
    start = message(model, "")
    start.update(content=[], stop_reason=None, usage={"input_tokens": 12, "output_tokens": 1})
    arguments = json.dumps(tool_input)
    half = len(arguments) // 2
    block = {"type": "tool_use", "id": TOOL_USE_ID, "name": name, "input": {}}
    return [
        sse("message_start", {"type": "message_start", "message": start}),
        sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}),
        *[
            sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                        "delta": {"type": "input_json_delta", "partial_json": part}})
            for part in (arguments[:half], arguments[half:])
        ],
        sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                              "usage": {"output_tokens": 9}}),
        sse("message_stop", {"type": "message_stop"}),
    ]  # fmt: skip


def tool_results(request: Received) -> list[dict[str, Any]]:
    return [
        block
        for turn in _body(request).get("messages", [])
        if isinstance(turn.get("content"), list)
        for block in turn["content"]
        if isinstance(block, dict) and block.get("type") == "tool_result"
    ]


def test_tool_use_round_trip(claude: ClaudeCode, upstream: Upstream):
    target = claude.cwd / TOOL_FILE
    target.write_text(TOOL_FILE_TEXT + "\n")
    prompt = f"Read {TOOL_FILE} and tell me what it says"

    def reply(request: Received) -> Behaviour:
        """The prompt's request gets a Read call; the one with its result a final text;
        anything else Claude Code sends in the background the default answer."""
        body = _body(request)
        if request.path.split("?")[0] != "/v1/messages" or not mentions(request, prompt):
            return anthropic_like(request)
        if any(block.get("tool_use_id") == TOOL_USE_ID for block in tool_results(request)):
            events = message_events(body["model"], FINAL_TEXT)
        elif "Read" in {tool.get("name") for tool in body.get("tools", [])}:
            events = tool_use_events(body["model"], "Read", {"file_path": str(target)})
        else:
            return anthropic_like(request)
        if body.get("stream"):
            return Stream(events)
        return Reply(status=500, body=b'{"error": "this fake streams tool calls only"}')

    upstream.reply = reply
    result = claude.run(prompt, "--allowedTools", "Read")
    details = report(result, upstream)
    assert result.returncode == 0, details
    assert FINAL_TEXT in result.stdout, details
    answered = [r for r in messages_requests(upstream) if tool_results(r)]
    assert answered, f"no request carried a tool_result\n{details}"
    result_block = next(b for b in tool_results(answered[-1]) if b.get("tool_use_id") == TOOL_USE_ID)
    assert TOOL_FILE_TEXT in json.dumps(result_block.get("content")), f"{result_block}\n{details}"
    assert not result_block.get("is_error"), f"{result_block}\n{details}"
    assert_upstream_saw_only_the_vendor(upstream)


OVERFLOW = ("This model's maximum context length is 128000 tokens. However, your messages resulted in 210000 tokens. "
            "Please reduce the length of the messages.")


def test_a_context_overflow_is_one_claude_code_acts_on(claude: ClaudeCode, upstream: Upstream):
    """A vendor's own wording (DeepSeek's Anthropic endpoint answers OpenAI's) reaches Claude
    Code as Anthropic's "prompt is too long: N tokens > M maximum": it takes it for a full
    context, reads the numbers, and goes to compact (a one-exchange conversation cannot be,
    which it says). Before, it showed "API Error: 400" and the session dead-ended."""
    too_long = Reply(400, json.dumps({"error": {"message": OVERFLOW, "type": "invalid_request_error",
                                                "code": "invalid_request_error"}}).encode())
    upstream.reply = lambda request: too_long if mentions(request, "Say hello") else anthropic_like(request)
    result = claude.run("Say hello")
    details = report(result, upstream)
    assert result.returncode == 1, details
    assert result.stdout.startswith("Prompt is too long · the request is ~210000 tokens (limit 128000)"), details

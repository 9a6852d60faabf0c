"""The real Claude Code CLI, started by `modelmux run` on a profile of non-Claude models
whose facts routes.yaml gives: it plans with their window (no `[1m]`, no 1,000,000
tokens), asks for no more output than the main model gives, and shows the models by
name and description in /model. Also: the installed CLI is the version whose variables
docs/claude-code.md describes (modelmux.cli.claude_env.VERIFIED_VERSION)."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from claude_session import Launcher, Terminal, started
from openai_upstream import openai_like
from test_claude_code import _body as body
from test_claude_code import claude_binary, mentions
from upstream import Upstream

from modelmux.cli import claude_env

pytestmark = pytest.mark.claude_code

PROFILE = "limits"
MAIN, SMALL = "gpt-limits", "gpt-limits-mini"
DESCRIPTION = "A mock GPT with a 64k window"


MODELS = [
    f'{{name: {MAIN}, context_window: 64000, max_output: 8192, thinking: false, efforts: [],'
    f' description: "{DESCRIPTION}"}}',
    f"{{name: {SMALL}, context_window: 100000, max_output: 4096, thinking: true, efforts: [low, high]}}",
]


@pytest.fixture
def launcher(upstream: Upstream, tmp_path: Path) -> Iterator[Launcher]:
    upstream.reply = openai_like
    gateway, launcher = started(tmp_path, upstream.url, PROFILE, {"opus": MAIN, "sonnet": MAIN, "haiku": SMALL}, MODELS)
    yield launcher
    gateway.stop()


def test_the_installed_cli_is_the_verified_version_and_reads_the_variables():
    """Claude Code changes often: a new version must be re-checked (docs/claude-code.md
    says how) before VERIFIED_VERSION moves, and none of the variables may be gone."""
    binary = claude_binary()
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30).stdout.split()[0]
    assert version == claude_env.VERIFIED_VERSION, (
        f"Claude Code {version} is installed; modelmux's launcher was verified against "
        f"{claude_env.VERIFIED_VERSION}: re-check what it reads (docs/claude-code.md), then update VERIFIED_VERSION"
    )
    bundle = Path(binary).resolve().read_bytes()  # the native binary, its JavaScript inside
    missing = [name for name in claude_env.verified_variables() if name.encode() not in bundle]
    assert not missing, f"Claude Code {version} no longer mentions {missing}"


def test_print_mode_plans_with_the_profiles_window_and_output(launcher: Launcher, upstream: Upstream):
    result = launcher.print_mode("Say hello", "--output-format", "json")
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    usage = json.loads(result.stdout)["modelUsage"]
    assert list(usage) == [MAIN], usage  # no `gpt-limits[1m]`
    assert usage[MAIN]["contextWindow"] == 64000
    asked = [body(r) for r in upstream.received if mentions(r, "Say hello")]
    assert asked and {b["model"] for b in asked} == {MAIN}
    assert {b["max_tokens"] for b in asked} == {8192}  # Claude Code's own ask is 32000 (the gateway caps it too)


def test_interactive_header_context_and_model_picker(launcher: Launcher):
    terminal = Terminal(launcher.command(), launcher.env, launcher.work)
    try:
        header = terminal.wait_for(r"❯", timeout=30)
        assert re.search(rf"{MAIN} · ", header) and "[1m]" not in header, header
        terminal.type("/context")
        context = terminal.wait_for(r"Auto-compact window")
        used = re.search(r"([\d.]+k)/64k tokens", context)
        assert used, context
        assert "Auto-compact window: 64k tokens" in context, context
        # What compaction keeps free: 13,000 plus the output limit, 8,192 (32,000 would make it 33k).
        assert "Autocompact buffer: 21.2k tokens" in context, context
        terminal.type("/model")
        picker = terminal.wait_for(r"Select model")
        assert f"currently {MAIN})" in picker, picker  # the Default entry: no [1m] there either
        entries = [line for line in picker.splitlines() if " via fake" in line]
        assert len(entries) == 3, picker
        assert f"{MAIN} via fake" in entries[0] and DESCRIPTION in entries[0], picker
        assert f"{SMALL} via fake" in entries[2] and "100k context, 4k output, thinking" in entries[2], picker
        terminal.key("Escape")
    finally:
        terminal.close()

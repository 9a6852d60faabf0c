"""The real Claude Code CLI as a user starts it: `modelmux run PROFILE` against a running
gateway, in a throwaway HOME, with `-p` or interactively in a private tmux server whose
screen a test reads."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from gateway import Gateway
from test_claude_code import CLAUDE_TIMEOUT, claude_binary

KEY = "sk-fake-session-5d2c8a"


def openai_routes(port: int, upstream_url: str, profile: str, slots: dict[str, str], models: list[str]) -> str:
    """routes.yaml with one profile, whose slots go to `fake`, an OpenAI Chat upstream;
    `models` are its `models:` entries (YAML, e.g. `{name: gpt-x, context_window: 64000}`)."""
    entries = "\n".join(f"      - {model}" for model in models)
    return f"""
server: {{port: {port}}}
providers:
  fake:
    protocol: openai-chat
    base_url: {upstream_url}/v1
    credentials: [{{label: fake, key: "${{FAKE_KEY}}"}}]
    models:
{entries}
default: null
profiles:
  {profile}:
    slots: {{{", ".join(f"{slot}: {model}" for slot, model in slots.items())}}}
    providers: [fake]
"""


def started(tmp_path: Path, upstream_url: str, profile: str, slots: dict[str, str],
            models: list[str]) -> tuple[Gateway, Launcher]:
    """A running gateway with `openai_routes`, and the launcher of its profile."""
    gateway = Gateway(tmp_path, "", env={"FAKE_KEY": KEY})
    gateway.config.write_text(openai_routes(gateway.port, upstream_url, profile, slots, models))
    gateway.start()
    return gateway, Launcher(gateway, profile, tmp_path, {"FAKE_KEY": KEY})


@dataclass
class Launcher:
    """`modelmux run PROFILE --config ROUTES -- ARGS` with `claude` on PATH, in a
    throwaway HOME whose Claude Code has finished onboarding and trusts the work dir."""

    gateway: Gateway
    profile: str
    tmp_path: Path
    environ: dict[str, str] = field(default_factory=dict)  # what routes.yaml's ${VAR}s need

    def __post_init__(self) -> None:
        binary = claude_binary()
        bin_dir = self.tmp_path / "bin"
        bin_dir.mkdir(exist_ok=True)
        if not (bin_dir / "claude").exists():
            (bin_dir / "claude").symlink_to(binary)
        self.home = self.tmp_path / "home"
        self.work = self.tmp_path / "work"
        self.work.mkdir(exist_ok=True)
        claude_dir = self.home / ".claude"
        claude_dir.mkdir(parents=True, exist_ok=True)
        settings = {"hasCompletedOnboarding": True, "theme": "dark",
                    "projects": {str(self.work): {"hasTrustDialogAccepted": True}}}
        (claude_dir / ".claude.json").write_text(json.dumps(settings))
        # The developer's own Claude Code settings (a model, a key, Bedrock) must not leak in.
        base = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_", "MODELMUX_"))}
        self.env = {
            **base, **self.environ,
            "PATH": f"{bin_dir}{os.pathsep}{base.get('PATH', '')}",
            "HOME": str(self.home), "USERPROFILE": str(self.home), "CLAUDE_CONFIG_DIR": str(claude_dir),
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_AUTOUPDATER": "1",
            "MODELMUX_STATE_DIR": self.gateway.env["MODELMUX_STATE_DIR"],
        }  # fmt: skip

    def command(self, *claude_args: str) -> list[str]:
        return [sys.executable, "-m", "modelmux.cli.main", "run", self.profile, "--config", str(self.gateway.config),
                "--", *claude_args]

    def print_mode(self, prompt: str, *args: str) -> subprocess.CompletedProcess[str]:
        """One `claude -p` turn through `modelmux run`."""
        return subprocess.run(self.command("-p", prompt, *args), env=self.env, cwd=self.work,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=CLAUDE_TIMEOUT)


class Terminal:
    """A command in a private tmux server (its own socket, so the environment is ours),
    on a 160x50 screen that `screen()` reads and `type()` writes to."""

    def __init__(self, command: list[str], env: dict[str, str], cwd: Path) -> None:
        tmux = shutil.which("tmux")
        if tmux is None:
            pytest.skip("tmux not installed: the interactive Claude Code test reads its screen through tmux")
        self.tmux = [tmux, "-L", f"modelmux-test-{secrets.token_hex(4)}", "-f", os.devnull]
        self.env = env
        subprocess.run([*self.tmux, "new-session", "-d", "-x", "160", "-y", "50", "-c", str(cwd), *command],
                       env=env, check=True, timeout=10)  # fmt: skip
        self.socket = subprocess.run([*self.tmux, "display-message", "-p", "#{socket_path}"], env=env,
                                     capture_output=True, text=True, timeout=10).stdout.strip()  # fmt: skip

    def screen(self) -> str:
        return subprocess.run([*self.tmux, "capture-pane", "-p", "-J"], env=self.env, capture_output=True,
                              text=True, timeout=10).stdout  # fmt: skip

    def wait_for(self, pattern: str, timeout: float = 20) -> str:
        """The screen once `pattern` (a regex) is on it; fails with the screen otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if re.search(pattern, screen):
                return screen
            if time.monotonic() > deadline:
                pytest.fail(f"{pattern!r} never appeared on Claude Code's screen:\n{screen}")
            time.sleep(0.2)

    def type(self, text: str) -> None:
        """Type `text`, then Enter once the slash-command menu has caught up."""
        subprocess.run([*self.tmux, "send-keys", "-l", text], env=self.env, check=True, timeout=10)
        time.sleep(0.5)
        self.key("Enter")

    def key(self, name: str) -> None:
        subprocess.run([*self.tmux, "send-keys", name], env=self.env, check=True, timeout=10)

    def close(self) -> None:
        """Ends the server and what runs in it, and removes its socket, which tmux leaves."""
        subprocess.run([*self.tmux, "kill-server"], env=self.env, capture_output=True, timeout=10)
        if self.socket:
            Path(self.socket).unlink(missing_ok=True)

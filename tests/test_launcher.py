"""The launcher: the profile environment (pure), and `modelmux` commands as real processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from gateway import free_port

from modelmux.cli import foreground, procs
from modelmux.config import loader
from modelmux.cli.launcher import (
    AUTH_CONFLICT, CHAIN_SCRIPT, LaunchError, apply_environment, gateway_command, profile_environment,
)
from modelmux.config.paths import bundled_config, find_config

SECRET = "mm-gateway-key-7f3a"
QUOTED_MODEL = """it's "glm" $HOME `x`"""
ROUTES = """
server:
  port: {port}
providers:
  anthropic: {{protocol: anthropic, base_url: 'https://api.anthropic.com', auth: passthrough}}
  zai:
    protocol: anthropic
    base_url: https://api.z.ai/api/anthropic
    credentials: [{{label: main, key: zai-secret}}]
profiles:
  claude:
    slots: {{opus: claude-opus-4-1, sonnet: claude-sonnet-4-5, haiku: claude-haiku-4-5}}
  glm:
    slots: {{opus: glm-4.6, haiku: glm-4.5-air, fable: glm-4.6}}
    model: glm-4.6
    subagent: glm-4.5-air
    providers: [zai]
  mixed:
    slots: {{sonnet: glm-4.6}}
    providers: [zai, anthropic]
  quoted:
    slots: {{sonnet: '{quoted}'}}
    providers: [zai]
    port: {profile_port}
"""


def write_routes(path: Path, port: int = 7878, profile_port: int = 7879, api_key: str | None = None) -> Path:
    text = ROUTES.format(port=port, profile_port=profile_port, quoted=QUOTED_MODEL.replace("'", "''"))
    if api_key:
        text = text.replace(f"  port: {port}\n", f"  port: {port}\n  api_key: {api_key}\n", 1)
    path.write_text(text)
    return path


@pytest.fixture
def routes(tmp_path: Path) -> loader.Config:
    return loader.load(write_routes(tmp_path / "routes.yaml"), environ={})


# ---- profile_environment: pure ------------------------------------------------------------

CLAUDE_ENV = {
    "ANTHROPIC_BASE_URL": "http://127.0.0.1:7878",
    "ANTHROPIC_DEFAULT_OPUS_MODEL": "claude-opus-4-1",
    "ANTHROPIC_DEFAULT_SONNET_MODEL": "claude-sonnet-4-5",
    "ANTHROPIC_DEFAULT_HAIKU_MODEL": "claude-haiku-4-5",
    "ANTHROPIC_SMALL_FAST_MODEL": "claude-haiku-4-5",
    "MODELMUX_SET": "ANTHROPIC_DEFAULT_HAIKU_MODEL,ANTHROPIC_DEFAULT_OPUS_MODEL,ANTHROPIC_DEFAULT_SONNET_MODEL,"
                    "ANTHROPIC_SMALL_FAST_MODEL",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
    "ANTHROPIC_CUSTOM_HEADERS": "x-modelmux-profile: claude",
}


def test_passthrough_profile_keeps_the_users_own_credentials(routes: loader.Config) -> None:
    values, unset = profile_environment(routes, "claude", {"ANTHROPIC_API_KEY": "sk-user"})
    assert values == CLAUDE_ENV
    assert unset == ["CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX"]


def test_profile_with_a_passthrough_provider_in_its_list_counts_as_passthrough(routes: loader.Config) -> None:
    values, unset = profile_environment(routes, "mixed", {})
    assert "ANTHROPIC_AUTH_TOKEN" not in values
    assert unset == ["CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX"]


def test_passthrough_profile_drops_a_placeholder_inherited_from_a_vendor_session(routes: loader.Config) -> None:
    _, unset = profile_environment(routes, "claude", {"ANTHROPIC_AUTH_TOKEN": "modelmux-placeholder"})
    assert unset == ["ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX"]


def test_passthrough_profile_leaves_out_the_api_key_when_a_token_is_set_too(routes: loader.Config) -> None:
    both = {"ANTHROPIC_AUTH_TOKEN": "sk-ant-oat01-user", "ANTHROPIC_API_KEY": "sk-user"}
    values, unset = profile_environment(routes, "claude", both)
    assert values == CLAUDE_ENV
    assert unset == ["ANTHROPIC_API_KEY", "CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX"]
    env = apply_environment(both, values, unset)
    assert env["ANTHROPIC_AUTH_TOKEN"] == "sk-ant-oat01-user" and "ANTHROPIC_API_KEY" not in env


def test_vendor_only_profile_sends_a_placeholder_and_unsets_the_api_key(routes: loader.Config) -> None:
    values, unset = profile_environment(routes, "glm", {"ANTHROPIC_API_KEY": "sk-user"})
    assert values == {
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:7878",
        "ANTHROPIC_DEFAULT_OPUS_MODEL": "glm-4.6",
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": "glm-4.5-air",
        "ANTHROPIC_DEFAULT_FABLE_MODEL": "glm-4.6",
        "ANTHROPIC_SMALL_FAST_MODEL": "glm-4.5-air",
        "ANTHROPIC_MODEL": "glm-4.6",
        "CLAUDE_CODE_SUBAGENT_MODEL": "glm-4.5-air",
        "MODELMUX_SET": "ANTHROPIC_DEFAULT_FABLE_MODEL,ANTHROPIC_DEFAULT_HAIKU_MODEL,ANTHROPIC_DEFAULT_OPUS_MODEL,"
                        "ANTHROPIC_MODEL,ANTHROPIC_SMALL_FAST_MODEL,CLAUDE_CODE_SUBAGENT_MODEL",
        "ANTHROPIC_AUTH_TOKEN": "modelmux-placeholder",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "ANTHROPIC_CUSTOM_HEADERS": "x-modelmux-profile: glm",
    }
    assert unset == ["ANTHROPIC_API_KEY", "CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX"]


KEYLESS_ROUTES = """
providers:
  anthropic: {protocol: anthropic, base_url: 'https://api.anthropic.com', auth: passthrough}
  ollama: {protocol: openai-chat, base_url: 'http://127.0.0.1:11434/v1', auth: none}
  zai: {protocol: anthropic, base_url: 'https://api.z.ai/api/anthropic', credentials: [{label: main, key: zai-secret}]}
profiles:
  local: {slots: {sonnet: qwen3-coder, haiku: qwen3}, providers: [ollama]}
  local-and-zai: {slots: {sonnet: qwen3-coder}, providers: [ollama, zai]}
  local-and-claude: {slots: {sonnet: qwen3-coder}, providers: [ollama, anthropic]}
"""


def test_keyless_profile_sends_a_placeholder_so_claude_code_starts_without_a_login(tmp_path: Path) -> None:
    """A local server takes no key and Claude Code needs none of its own: the placeholder
    (which the gateway strips) spares it the login, as for a vendor's profile."""
    (tmp_path / "routes.yaml").write_text(KEYLESS_ROUTES)
    keyless = loader.load(tmp_path / "routes.yaml", environ={})
    values, unset = profile_environment(keyless, "local", {"ANTHROPIC_API_KEY": "sk-ant-api03-user"})
    assert values == {
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:7878",
        "ANTHROPIC_DEFAULT_SONNET_MODEL": "qwen3-coder",
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": "qwen3",
        "ANTHROPIC_SMALL_FAST_MODEL": "qwen3",
        "MODELMUX_SET": "ANTHROPIC_DEFAULT_HAIKU_MODEL,ANTHROPIC_DEFAULT_SONNET_MODEL,ANTHROPIC_SMALL_FAST_MODEL",
        "ANTHROPIC_AUTH_TOKEN": "modelmux-placeholder",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "ANTHROPIC_CUSTOM_HEADERS": "x-modelmux-profile: local",
    }
    assert unset == ["ANTHROPIC_API_KEY", "CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX"]
    assert profile_environment(keyless, "local-and-zai", {})[0]["ANTHROPIC_AUTH_TOKEN"] == "modelmux-placeholder"
    # With a passthrough provider beside it, Claude Code's own login is needed after all.
    values, unset = profile_environment(keyless, "local-and-claude", {"ANTHROPIC_AUTH_TOKEN": "modelmux-placeholder"})
    assert "ANTHROPIC_AUTH_TOKEN" not in values
    assert unset == ["ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX"]


def test_profile_with_its_own_port_talks_to_that_port(routes: loader.Config) -> None:
    values, _ = profile_environment(routes, "quoted", {})
    assert values["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:7879"
    assert values["ANTHROPIC_DEFAULT_SONNET_MODEL"] == QUOTED_MODEL
    assert values["ANTHROPIC_CUSTOM_HEADERS"] == "x-modelmux-profile: quoted"


def test_gateway_key_goes_in_a_custom_header(tmp_path: Path) -> None:
    keyed = loader.load(write_routes(tmp_path / "routes.yaml", api_key=SECRET), environ={})
    values, _ = profile_environment(keyed, "claude", {})
    assert values["ANTHROPIC_CUSTOM_HEADERS"] == f"x-modelmux-profile: claude\nx-modelmux-key: {SECRET}"


def test_no_proxy_is_extended_not_replaced(routes: loader.Config) -> None:
    base = {"NO_PROXY": "example.com, localhost", "no_proxy": "127.0.0.1,.corp"}
    values, _ = profile_environment(routes, "claude", base)
    assert values["NO_PROXY"] == "example.com,localhost,127.0.0.1"
    assert values["no_proxy"] == "127.0.0.1,.corp,localhost"


def test_users_custom_headers_are_kept_and_stale_modelmux_ones_replaced(tmp_path: Path) -> None:
    keyed = loader.load(write_routes(tmp_path / "routes.yaml", api_key=SECRET), environ={})
    base = {"ANTHROPIC_CUSTOM_HEADERS": "X-Team: blue\nX-Modelmux-Profile: glm\n\nx-modelmux-key: old\nX-Trace: 1"}
    values, _ = profile_environment(keyed, "claude", base)
    assert values["ANTHROPIC_CUSTOM_HEADERS"] == (
        f"X-Team: blue\nX-Trace: 1\nx-modelmux-profile: claude\nx-modelmux-key: {SECRET}"
    )


def test_unknown_profile_lists_the_known_ones(routes: loader.Config) -> None:
    with pytest.raises(LaunchError) as caught:
        profile_environment(routes, "gpt", {})
    assert caught.value.exit_code == 2
    assert str(caught.value) == f"'gpt' is not a profile in {routes.path}; known profiles: claude, glm, mixed, quoted"


def test_config_discovery_order(tmp_path: Path) -> None:
    cwd, home = tmp_path / "cwd", tmp_path / "home"
    (home / ".config" / "modelmux").mkdir(parents=True)
    cwd.mkdir()
    assert find_config(None, {}, cwd, home) == bundled_config()
    (home / ".config" / "modelmux" / "routes.yaml").write_text("")
    assert find_config(None, {}, cwd, home) == home / ".config" / "modelmux" / "routes.yaml"
    (cwd / "routes.yaml").write_text("")
    assert find_config(None, {}, cwd, home) == cwd / "routes.yaml"
    assert find_config(None, {"MODELMUX_CONFIG": "/env.yaml"}, cwd, home) == Path("/env.yaml")
    assert find_config("/flag.yaml", {"MODELMUX_CONFIG": "/env.yaml"}, cwd, home) == Path("/flag.yaml")


def test_gateway_command_line(routes: loader.Config) -> None:
    router = str(CHAIN_SCRIPT)
    common = ["--mode", "reverse:https://api.anthropic.com@127.0.0.1:9000", "--set", f"modelmux_config={routes.path}"]
    environ = {"MODELMUX_MITMDUMP": "/x/mitmdump", "MODELMUX_MITMWEB": "/x/mitmweb"}
    assert gateway_command(routes, 9000, environ) == [
        "/x/mitmdump", "-s", router, *common, "--set", "flow_detail=0", "--set", "modelmux_summary_lines=true"]
    assert gateway_command(routes, 9000, environ, web=True, web_port=9100) == [
        "/x/mitmweb", "-s", router, *common,
        "--set", "web_open_browser=false", "--set", "web_host=127.0.0.1",
        "--set", "web_columns=comment", "--set", "web_port=9100",
        "--set", "listen_host=127.0.0.1", "--set", "listen_port=9000",
    ]  # fmt: skip
    with pytest.raises(LaunchError, match="port 7879 is profile 'quoted''s own port"):
        gateway_command(routes, 7879, environ)


# ---- the commands, as processes ------------------------------------------------------------

Cli = Callable[..., subprocess.CompletedProcess]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict]:
    """A state dir, a routes.yaml on free ports, a fake `claude` first on PATH; every
    gateway a test starts is stopped afterwards."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "claude.json"
    fake_claude = bin_dir / "claude"
    fake_claude.write_text(
        f"#!{sys.executable}\nimport json, os, sys\n"
        f"json.dump({{'argv': sys.argv[1:], 'env': dict(os.environ)}}, open({str(record)!r}, 'w'))\n"
    )
    fake_claude.chmod(0o755)
    port, profile_port = free_port(), free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith(("MODELMUX_", "ANTHROPIC_"))}
    env |= {"MODELMUX_STATE_DIR": str(tmp_path / "state"), "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"}
    world = {
        "tmp": tmp_path, "env": env, "port": port, "profile_port": profile_port, "record": record,
        "config": write_routes(tmp_path / "routes.yaml", port, profile_port, api_key=SECRET),
        "state": tmp_path / "state",
    }  # fmt: skip
    yield world
    subprocess.run([sys.executable, "-m", "modelmux.cli.main", "stop", "--config", str(world["config"])],
                   env=env, capture_output=True, timeout=20)  # fmt: skip
    for pid_file in (tmp_path / "state").glob("*.pid"):
        pid = int(pid_file.read_text())
        if procs.alive(pid) and procs.is_gateway_process(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def cli(world: dict) -> Cli:
    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "modelmux.cli.main", *args]
        if "--config" not in args[: args.index("--") if "--" in args else None]:
            command[3:4] = [args[0], "--config", str(world["config"])]
        return subprocess.run(command, env=env or world["env"], capture_output=True, text=True, timeout=60)

    return run


def fake_gateway(world: dict, body: str) -> dict[str, str]:
    """An environment whose "mitmdump" is a shell script: the failures only a gateway sees."""
    script = world["tmp"] / "fake-mitmdump"
    script.write_text(f"#!/bin/sh\n{textwrap.dedent(body)}")
    script.chmod(0o755)
    return world["env"] | {"MODELMUX_MITMDUMP": str(script)}


def test_env_output_evaluates_to_the_exact_environment(world: dict, cli: Cli) -> None:
    base = world["env"] | {"ANTHROPIC_API_KEY": "sk-user", "CLAUDE_CODE_USE_BEDROCK": "1", "NO_PROXY": "corp"}
    script = f"eval \"$({sys.executable} -m modelmux.cli.main env quoted --config {world['config']})\"; env -0"
    result = subprocess.run(["bash", "-c", script], env=base, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    seen = dict(line.split("=", 1) for line in result.stdout.split("\0") if line)
    values, unset = profile_environment(loader.load(world["config"], environ={}), "quoted", base)
    assert {name: seen.get(name) for name in values} == values
    assert values["ANTHROPIC_DEFAULT_SONNET_MODEL"] == QUOTED_MODEL
    assert values["ANTHROPIC_CUSTOM_HEADERS"] == f"x-modelmux-profile: quoted\nx-modelmux-key: {SECRET}"
    assert values["NO_PROXY"] == "corp,127.0.0.1,localhost"
    assert [name for name in unset if name in seen] == []
    assert unset == ["ANTHROPIC_API_KEY", "CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX"]


def test_run_with_both_credentials_leaves_out_the_key_and_says_so_once(world: dict, cli: Cli) -> None:
    both = world["env"] | {"ANTHROPIC_AUTH_TOKEN": "sk-ant-oat01-user", "ANTHROPIC_API_KEY": "sk-user"}
    first = cli("run", "claude", env=both)
    assert first.returncode == 0, first.stderr
    assert first.stderr.splitlines()[-1] == f"modelmux: {AUTH_CONFLICT}"
    assert first.stderr.count(AUTH_CONFLICT) == 1
    seen = json.loads(world["record"].read_text())["env"]
    assert seen["ANTHROPIC_AUTH_TOKEN"] == "sk-ant-oat01-user" and "ANTHROPIC_API_KEY" not in seen
    again = cli("run", "claude", env=both)  # the gateway reused: the one line, and only it
    assert again.stderr == f"modelmux: {AUTH_CONFLICT}\n"
    vendor = cli("run", "glm", env=both)  # the placeholder replaces both: no conflict to tell of
    assert vendor.returncode == 0 and vendor.stderr == ""


def test_run_starts_one_gateway_reuses_it_and_stop_ends_it(world: dict, cli: Cli) -> None:
    tricky = ["--dangerously-skip-permissions", "-p", "two words", "--", "--config", "it's"]
    first = cli("run", "glm", "--", *tricky)
    assert first.returncode == 0, first.stderr
    seen = json.loads(world["record"].read_text())
    assert seen["argv"] == tricky
    expected, unset = profile_environment(loader.load(world["config"], environ={}), "glm", world["env"])
    assert {name: seen["env"].get(name) for name in expected} == expected
    assert [name for name in unset if name in seen["env"]] == []
    gateway = procs.Gateway("127.0.0.1", world["port"], world["state"], SECRET)
    pid = procs.reported_pid(gateway.health())
    assert pid is not None and procs.alive(pid)
    # Without the gateway key (server.api_key), /healthz says only that it is modelmux.
    assert procs.health("127.0.0.1", world["port"]) == {"status": "ok", "service": "modelmux", "version": "0.1.0"}
    assert gateway.pid_file.read_text() == f"{pid}\n"
    assert first.stderr == f"modelmux: started the gateway on 127.0.0.1:{world['port']} (pid {pid}, log {gateway.log_file})\n"

    second = cli("run", "claude", "--", "-c")
    assert second.returncode == 0, second.stderr
    assert json.loads(world["record"].read_text())["argv"] == ["-c"]
    assert procs.reported_pid(gateway.health()) == pid
    assert gateway.log_file.read_text().count("modelmux starts:") == 1
    assert second.stderr == ""

    on_profile_port = cli("run", "quoted")
    assert on_profile_port.returncode == 0, on_profile_port.stderr
    assert json.loads(world["record"].read_text())["env"]["ANTHROPIC_BASE_URL"] == f"http://127.0.0.1:{world['profile_port']}"
    assert procs.reported_pid(gateway.health(world["profile_port"])) == pid

    status = cli("status")
    assert status.returncode == 0
    assert status.stdout.startswith(f"modelmux gateway http://127.0.0.1:{world['port']}: healthy (pid {pid}, version 0.1.0)\n")
    assert f"  config:       {world['config']}\n" in status.stdout
    assert "  profiles:     claude, glm, mixed, quoted\n" in status.stdout
    assert f"  log:          {gateway.log_file}\n" in status.stdout  # where this gateway's output goes
    report = json.loads(cli("status", "--json").stdout)
    assert (report["healthy"], report["pid"], report["reload_error"]) == (True, pid, None)
    assert report["config"]["providers"] == ["anthropic", "zai"]

    again = cli("serve")
    assert again.returncode == 1
    assert again.stderr == (
        f"modelmux: modelmux is already running on 127.0.0.1:{world['port']} (pid {pid}); stop it with `modelmux stop`\n"
    )

    stopped = cli("stop")
    assert (stopped.returncode, stopped.stdout) == (0, f"stopped the gateway on 127.0.0.1:{world['port']} (pid {pid})\n")
    assert not procs.alive(pid)
    assert not gateway.pid_file.exists()
    after = cli("status")
    assert after.returncode == 1
    assert after.stdout == (f"modelmux gateway http://127.0.0.1:{world['port']}: not running\n"
                            f"  last log:     {gateway.log_file} (of the last gateway started in the background)\n")
    assert cli("stop").stdout == f"modelmux is not running on 127.0.0.1:{world['port']}\n"
    for output in (first, second, status, after, stopped):
        assert SECRET not in output.stdout + output.stderr


def test_a_gateway_with_another_key_is_named_as_such(world: dict, cli: Cli) -> None:
    """Its /healthz says only that it is modelmux to a routes.yaml with another server.api_key:
    `run` and `status` say so, rather than take it for a gateway without profiles."""
    assert cli("run", "glm").returncode == 0
    other = write_routes(world["tmp"] / "other.yaml", world["port"], world["profile_port"], api_key="mm-other-key-0000")
    status = cli("status", "--config", str(other))
    assert status.returncode == 0  # healthy, only not this routes.yaml's to read
    assert status.stdout.startswith(f"modelmux gateway http://127.0.0.1:{world['port']}: running (version 0.1.0) with "
                                    f"a gateway key other than {other}'s server.api_key, so it shows no details\n")
    run = cli("run", "glm", "--config", str(other))
    assert run.returncode == 1
    assert (f"the gateway on 127.0.0.1:{world['port']} has a gateway key (server.api_key) other than {other}'s"
            in run.stderr)
    for output in (status, run):
        assert SECRET not in output.stdout + output.stderr and "mm-other-key-0000" not in output.stdout + output.stderr


def test_serve_execs_the_gateway_in_the_foreground(world: dict, cli: Cli) -> None:
    port = free_port()
    command = [sys.executable, "-m", "modelmux.cli.main", "serve", "--port", str(port),
               "--config", str(world["config"])]
    process = subprocess.Popen(command, env=world["env"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        # The profile's listener too: a SIGTERM while mitmproxy still opens it can crash it (SIGSEGV).
        while procs.health("127.0.0.1", world["profile_port"]) is None and time.monotonic() < deadline:
            assert process.poll() is None
            time.sleep(0.1)
        info = procs.health("127.0.0.1", port, key=SECRET)
        assert procs.reported_pid(info) == process.pid  # exec'd: no wrapper process in between
        status = cli("status", "--port", str(port)).stdout.splitlines()
        assert status[3:6] == [
            "  routes:       0 under routes:; no default",  # the profiles' names route nowhere
            "  aliases:      0",
            "  profiles:     claude, glm, mixed, quoted",
        ]
        assert status[7] == "  log:          none: its output goes to the terminal that runs it (modelmux serve)"
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
    finally:
        process.kill()
        process.wait()


def test_run_with_web_starts_mitmweb_and_names_its_ui(world: dict, cli: Cli) -> None:
    web_port = free_port()
    result = cli("run", "claude", "--web", "--web-port", str(web_port))
    assert result.returncode == 0, result.stderr
    url, overview = result.stderr.splitlines()[-1].removeprefix("modelmux: web UI: ").split("  overview: ")
    assert url.startswith(f"http://127.0.0.1:{web_port}/?token=")
    assert overview == f"http://127.0.0.1:{world['port']}/modelmux/overview"
    with urllib.request.urlopen(overview, timeout=5) as page:  # open: the page asks for the key itself
        assert page.headers["content-type"] == "text/html; charset=utf-8"
    pid = procs.reported_pid(procs.health("127.0.0.1", world["port"], key=SECRET))
    assert b"/mitmweb\0" in Path(f"/proc/{pid}/cmdline").read_bytes()
    with urllib.request.urlopen(url, timeout=5) as page:
        assert page.status == 200
    # mitmweb defers a --set it does not know without a word: ask it what it took.
    with urllib.request.urlopen(url.replace("/?token=", "/options?token="), timeout=5) as page:
        options = json.load(page)
    assert options["web_columns"]["value"] == ["comment"]
    # The footer's address is the gateway's, not mitmweb's default of *:8080.
    assert (options["listen_host"]["value"], options["listen_port"]["value"]) == ("127.0.0.1", world["port"])
    assert (options["web_host"]["value"], options["web_port"]["value"]) == ("127.0.0.1", web_port)
    assert options["web_open_browser"]["value"] is False


def test_serve_propagates_the_gateways_exit_status(world: dict, cli: Cli) -> None:
    result = cli("serve", env=fake_gateway(world, "exit 3\n"))
    assert result.returncode == 3
    as_child = cli("serve", env=fake_gateway(world, "exit 3\n") | {"MODELMUX_LAUNCH": "child"})
    assert as_child.returncode == 3


def test_serve_names_the_overview_and_with_web_the_ui_in_its_first_line(world: dict, cli: Cli) -> None:
    address = f"http://127.0.0.1:{world['port']}"
    plain = cli("serve", env=fake_gateway(world, "exit 0\n"))
    fake = fake_gateway(world, "exit 0\n")
    web = cli("serve", "--web", "--web-port", "9191", env=fake | {"MODELMUX_MITMWEB": fake["MODELMUX_MITMDUMP"]})
    assert (plain.returncode, web.returncode) == (0, 0)
    line = f"modelmux: serving {world['config']} on {address}  overview: {address}/modelmux/overview"
    assert plain.stderr.splitlines()[-1] == line
    assert web.stderr.splitlines()[-1] == f"{line}  web UI: http://127.0.0.1:9191/ (with the token mitmweb prints)"


def test_serve_on_a_port_taken_by_another_program(world: dict, cli: Cli) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", world["port"]))
        other.listen()
        result = cli("serve")
    assert result.returncode == 1
    assert result.stderr == (
        f"modelmux: port {world['port']} on 127.0.0.1 is in use by another program; "
        f"pick another with --port N or server.port in {world['config']}\n"
    )


def test_run_without_claude_on_path(world: dict, cli: Cli) -> None:
    result = cli("run", "glm", env=world["env"] | {"PATH": str(world["tmp"])})
    assert result.returncode == 127
    assert result.stderr == "modelmux: claude not found on PATH; install it with `npm install -g @anthropic-ai/claude-code`\n"
    assert not world["state"].exists()  # no gateway started for nothing


def test_run_reports_a_gateway_that_exits_during_start_up(world: dict, cli: Cli) -> None:
    env = fake_gateway(world, "echo 'loading routes.yaml'\necho 'boom: cannot bind' >&2\nexit 1\n")
    result = cli("run", "glm", env=env)
    log = world["state"] / f"gateway-{world['port']}.log"
    assert result.returncode == 1
    assert "exited before it became healthy" in result.stderr
    assert result.stderr.endswith(f"last lines of {log}:\n  loading routes.yaml\n  boom: cannot bind\n")
    assert not (world["state"] / f"gateway-{world['port']}.pid").exists()
    assert not world["record"].exists()  # claude never ran


def test_run_stops_a_gateway_that_never_becomes_healthy(world: dict, cli: Cli) -> None:
    marker = world["tmp"] / "fake.pid"
    env = fake_gateway(world, f"echo $$ > {marker}\nexec sleep 60\n") | {"MODELMUX_START_TIMEOUT": "1"}
    result = cli("run", "glm", env=env)
    log = world["state"] / f"gateway-{world['port']}.log"
    assert result.returncode == 1
    assert result.stderr.endswith(f"within 1 s, so it was stopped; see {log}\n")
    assert "never became healthy" in result.stderr
    assert not procs.alive(int(marker.read_text()))


def test_stop_ignores_a_stale_pid_file_naming_another_process(world: dict, cli: Cli) -> None:
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        world["state"].mkdir()
        (world["state"] / f"gateway-{world['port']}.pid").write_text(f"{bystander.pid}\n")
        result = cli("stop")
        assert (result.returncode, result.stdout) == (0, f"modelmux is not running on 127.0.0.1:{world['port']}\n")
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_usage_errors(world: dict, cli: Cli) -> None:
    unknown = cli("run", "gpt")
    assert (unknown.returncode, unknown.stderr) == (
        2, f"modelmux: 'gpt' is not a profile in {world['config']}; known profiles: claude, glm, mixed, quoted\n"
    )  # fmt: skip
    stray = cli("run", "glm", "-p", "hi")
    assert stray.returncode == 2
    assert "unrecognized arguments: -p hi; put claude's arguments after `--`" in stray.stderr
    bad = world["tmp"] / "bad.yaml"
    bad.write_text("providers: {}\nprofiles: {p: {port: 0}}\n")
    broken = cli("env", "p", "--config", str(bad))
    assert broken.returncode == 2
    assert broken.stderr.startswith(f"{bad}: ")


# ---- the child-process launch (Windows' only way; forced here with MODELMUX_LAUNCH=child) ----


def fake_claude(world: dict, body: str) -> None:
    """Replace the fake `claude` on PATH: it records its argv and environment, then runs `body`."""
    script = world["tmp"] / "bin" / "claude"
    script.write_text(
        f"#!{sys.executable}\nimport json, os, signal, sys, time\n"
        f"json.dump({{'argv': sys.argv[1:], 'env': dict(os.environ), 'pid': os.getpid()}}, open({str(world['record'])!r}, 'w'))\n"
        + textwrap.dedent(body)
    )


def test_launch_mode() -> None:
    assert foreground.launch_mode({}, "posix") == "exec"
    assert foreground.launch_mode({"MODELMUX_LAUNCH": "child"}, "posix") == "child"
    assert foreground.launch_mode({}, "nt") == "child"
    assert foreground.launch_mode({"MODELMUX_LAUNCH": "exec"}, "nt") == "child"  # Windows has no exec


def test_run_as_a_child_passes_the_environment_and_returns_claudes_exit_status(world: dict, cli: Cli) -> None:
    fake_claude(world, "sys.exit(3)\n")
    result = cli("run", "glm", "--", "-p", "two words", env=world["env"] | {"MODELMUX_LAUNCH": "child"})
    assert result.returncode == 3, result.stderr
    seen = json.loads(world["record"].read_text())
    assert seen["argv"] == ["-p", "two words"]
    expected, unset = profile_environment(loader.load(world["config"], environ={}), "glm", world["env"])
    assert {name: seen["env"].get(name) for name in expected} == expected
    assert [name for name in unset if name in seen["env"]] == []


@pytest.mark.parametrize(
    ("number", "handler", "status"),
    [
        (signal.SIGTERM, "sys.exit(7)", 7),
        (signal.SIGTERM, None, 128 + signal.SIGTERM),  # killed by it: reported as a shell does
        (signal.SIGHUP, "sys.exit(8)", 8),
        # Without a terminal no Ctrl-C reached claude on its own: only the forwarded one.
        (signal.SIGINT, None, 128 + signal.SIGINT),
    ],
)  # fmt: skip
def test_run_as_a_child_forwards_signals_and_exits_with_claudes_status(
    world: dict, cli: Cli, number: int, handler: str | None, status: int
) -> None:
    # Without a handler, the default disposition, set explicitly: a test run started in
    # the background of a non-interactive shell inherits SIGINT ignored, and so would
    # the fake, which then never ends.
    on_term = f"signal.signal({number}, lambda *_: {handler})\n" if handler else f"signal.signal({number}, signal.SIG_DFL)\n"
    fake_claude(world, f"{on_term}open({str(world['tmp'] / 'ready')!r}, 'w').close()\ntime.sleep(60)\nsys.exit(0)\n")
    command = [sys.executable, "-m", "modelmux.cli.main", "run", "glm", "--config", str(world["config"])]
    launcher = subprocess.Popen(
        command, env=world["env"] | {"MODELMUX_LAUNCH": "child"}, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        while not (world["tmp"] / "ready").exists():
            assert launcher.poll() is None and time.monotonic() < deadline, launcher.stderr.read()
            time.sleep(0.05)
        child = json.loads(world["record"].read_text())["pid"]
        assert child != launcher.pid  # a child, not exec
        launcher.send_signal(number)
        assert launcher.wait(10) == status
        assert not procs.alive(child)
    finally:
        launcher.kill()
        launcher.wait()

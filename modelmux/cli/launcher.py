"""What the launcher decides without touching a process: which routes.yaml, which
environment a profile gives Claude Code, and which command starts the gateway.

Processes, sockets and state files live in `modelmux.cli.procs`; the commands in `modelmux.cli.main`.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import modelmux
from modelmux.cli.claude_env import model_environment
from modelmux.config.model_facts import Discovered
from modelmux.config.paths import CONFIG_NAME, config_dir
from modelmux.config.types import Config, Profile
from modelmux.headers import KEY_HEADER, PLACEHOLDER_TOKEN, PROFILE_HEADER

REVERSE_TARGET = "https://api.anthropic.com"
LOCAL_HOSTS = ("127.0.0.1", "localhost")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
# Claude Code prefers these over ANTHROPIC_BASE_URL; a profile must not leak to them.
CLOUD_SWITCHES = ("CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX")
GATEWAY_EXECUTABLE_ENV = {"mitmdump": "MODELMUX_MITMDUMP", "mitmweb": "MODELMUX_MITMWEB"}
# mitmweb's flow list: the Dashboard's one-line summary (docs/dashboard.md), alone. mitmweb
# 12 shares the row out by the columns' fixed widths (status 80 px, time 50, comment 150;
# `path` would take the rest and leave the comment 150 px), so each other column took
# width from it: with status and time, a flow opened beside the list left the summary
# some 58 characters. The summary begins with the status the client got (a stream that
# broke off after its 200 is no success) and ends with the time; a flow's own view still
# has its URL and times.
WEB_COLUMNS = ("comment",)


class LaunchError(Exception):
    """A failure the launcher reports as one message and an exit status."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


PACKAGE = Path(modelmux.__file__).resolve().parent
# The gateway's addons as one mitmproxy script, inside the package: an installed
# modelmux runs from anywhere (a checkout's addons/router.py loads the same list).
CHAIN_SCRIPT = PACKAGE / "addons" / "chain.py"


def installed_example_note(found: Path, environ: Mapping[str, str]) -> str | None:
    """What to tell a user of an installed modelmux that found no routes.yaml of theirs:
    the example inside the package serves, and is not the file to edit."""
    if found != PACKAGE / CONFIG_NAME:
        return None
    return (f"no routes.yaml in this directory or in {config_dir(environ)}: using the bundled example, which "
            f"passes every model through to Anthropic; write your own at {config_dir(environ) / CONFIG_NAME}")


def client_host(listen_host: str) -> str:
    """The address a local client dials for a gateway listening on `listen_host`."""
    return "127.0.0.1" if listen_host in WILDCARD_HOSTS else listen_host


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def profile_of(config: Config, name: str) -> Profile:
    """The named profile; an unknown name is a usage error listing the known ones."""
    if name in config.profiles:
        return config.profiles[name]
    known = ", ".join(sorted(config.profiles)) or "none (add one under profiles: in routes.yaml)"
    raise LaunchError(f"'{name}' is not a profile in {config.path}; known profiles: {known}", 2)


def profile_port(config: Config, profile: Profile) -> int:
    """The port a profile's client talks to: its own listener, else the shared one."""
    return profile.port if profile.port is not None else config.server.port


def uses_passthrough(config: Config, profile: Profile) -> bool:
    """Whether a request of this profile may reach a provider that forwards the client's
    own Anthropic token, which Claude Code then must send."""
    return any(
        provider.passthrough and profile.allows(name) for name, provider in config.providers.items()
    )


def profile_environment(
    config: Config, profile_name: str, base_env: Mapping[str, str], discovered: Discovered | None = None
) -> tuple[dict[str, str], list[str]]:
    """The variables that make Claude Code talk to the gateway as `profile_name`:
    (variables to set, variables to unset). `base_env` supplies values to merge with;
    `discovered`, what providers' model lists reported of their models."""
    profile = profile_of(config, profile_name)
    host = client_host(config.server.host)
    values = {"ANTHROPIC_BASE_URL": f"http://{url_host(host)}:{profile_port(config, profile)}"}
    models, unset = model_environment(config, profile, base_env, discovered)
    values.update(models)
    if uses_passthrough(config, profile):
        # A placeholder inherited from a vendor profile's session would replace the login.
        if base_env.get("ANTHROPIC_AUTH_TOKEN") == PLACEHOLDER_TOKEN:
            unset.append("ANTHROPIC_AUTH_TOKEN")
        elif auth_conflict(base_env):
            unset.append("ANTHROPIC_API_KEY")
    else:
        values["ANTHROPIC_AUTH_TOKEN"] = PLACEHOLDER_TOKEN
        unset.append("ANTHROPIC_API_KEY")  # with both set, Claude Code warns of an auth conflict
    unset.extend(CLOUD_SWITCHES)
    for name in ("NO_PROXY", "no_proxy"):
        values[name] = _merge_hosts(base_env.get(name, ""), [*LOCAL_HOSTS, host])
    own = {PROFILE_HEADER: profile.name}
    if config.server.own_key:
        own[KEY_HEADER] = config.server.own_key
    values["ANTHROPIC_CUSTOM_HEADERS"] = _merge_headers(base_env.get("ANTHROPIC_CUSTOM_HEADERS", ""), own)
    return values, unset


AUTH_CONFLICT = ("both ANTHROPIC_AUTH_TOKEN and ANTHROPIC_API_KEY are set; ANTHROPIC_API_KEY is left out "
                 "for claude (Claude Code would warn of an auth conflict)")


def auth_conflict(base_env: Mapping[str, str]) -> bool:
    """Both of Claude Code's own credentials inherited: with both, it warns of an auth
    conflict at every start, so a passthrough profile keeps the token and drops the key."""
    token = base_env.get("ANTHROPIC_AUTH_TOKEN", "")
    return bool(token) and token != PLACEHOLDER_TOKEN and bool(base_env.get("ANTHROPIC_API_KEY"))


def _merge_hosts(existing: str, hosts: Iterable[str]) -> str:
    """A NO_PROXY list with `hosts` appended once: a system proxy must not see local traffic."""
    merged = [entry.strip() for entry in existing.split(",") if entry.strip()]
    merged += [host for host in dict.fromkeys(hosts) if host not in merged]
    return ",".join(merged)


def _merge_headers(existing: str, own: Mapping[str, str]) -> str:
    """The user's ANTHROPIC_CUSTOM_HEADERS lines, minus stale modelmux ones, plus ours."""
    kept = [
        line
        for line in existing.splitlines()
        if line.strip() and line.partition(":")[0].strip().lower() not in own
    ]
    return "\n".join(kept + [f"{name}: {value}" for name, value in own.items()])


def apply_environment(base_env: Mapping[str, str], values: Mapping[str, str], unset: Iterable[str]) -> dict[str, str]:
    env = {name: value for name, value in base_env.items() if name not in set(unset)}
    env.update(values)
    return env


def find_program(name: str, environ: Mapping[str, str]) -> str | None:
    """A mitmproxy tool: $MODELMUX_MITMDUMP/$MODELMUX_MITMWEB, then next to this Python
    (a venv's bin/ need not be on PATH), then PATH."""
    override = environ.get(GATEWAY_EXECUTABLE_ENV.get(name, ""))
    if override:
        return override
    beside = Path(sys.executable).parent / name  # not resolved: a venv's python is a symlink
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name, path=environ.get("PATH"))


def gateway_command(
    config: Config, port: int, environ: Mapping[str, str], web: bool = False, web_port: int | None = None,
    record: Path | None = None, log: Path | None = None,
) -> list[str]:
    """The mitmdump/mitmweb command line of a gateway whose main listener is `port`;
    the addon opens the profiles' own ports itself. `record`: the file the session's
    flows are recorded to; `log`: the file a background gateway's output goes to."""
    if not CHAIN_SCRIPT.is_file():
        raise LaunchError(f"{CHAIN_SCRIPT} is missing: this modelmux install is broken; reinstall it")
    clash = next((p.name for p in config.profiles.values() if p.port == port), None)
    if clash is not None:
        raise LaunchError(f"port {port} is profile '{clash}''s own port; pick another with --port N", 2)
    name = "mitmweb" if web else "mitmdump"
    program = find_program(name, environ)
    if program is None:
        raise LaunchError(f"{name} not found beside {sys.executable} or on PATH; mitmproxy is a dependency "
                          "of modelmux: reinstall modelmux")
    argv = [
        program,
        "-s", str(CHAIN_SCRIPT),
        "--mode", f"reverse:{REVERSE_TARGET}@{config.server.host}:{port}",
        "--set", f"modelmux_config={config.path}",
    ]  # fmt: skip
    if web:
        argv += web_options(web_port, config.server.host, port)
    else:  # a line per request: modelmux's summary, once the client has its answer (Dashboard)
        argv += ["--set", "flow_detail=0", "--set", "modelmux_summary_lines=true"]
    if record is not None:
        argv += ["--set", f"modelmux_record={record.expanduser().resolve()}"]
    if log is not None:
        argv += ["--set", f"modelmux_log={log}"]
    return argv


def web_options(web_port: int | None = None, host: str | None = None, port: int | None = None) -> list[str]:
    """mitmweb's settings for the dashboard: loopback only (the UI shows every request),
    no browser popping up from a background start, and the columns above. `host` and
    `port`: where the gateway listens. mitmweb's footer shows `listen_host:listen_port`,
    the regular proxy's address, `*:8080` by default, where nothing listens; the
    listeners all name theirs (`@host:port`), so those options only change the footer."""
    options = ["web_open_browser=false", "web_host=127.0.0.1", *(f"web_columns={c}" for c in WEB_COLUMNS)]
    if web_port is not None:
        options.append(f"web_port={web_port}")
    if host is not None and port is not None:
        options += [f"listen_host={host}", f"listen_port={port}"]
    return [arg for option in options for arg in ("--set", option)]

"""`modelmux`: start the gateway, point Claude Code at it as a profile, and manage it."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from modelmux import usage
from modelmux.cli import foreground, import_logins as import_command, procs, shells
from modelmux.cli.parser import MITMWEB_DEFAULT_PORT, build_parser
from modelmux.cli.status_report import credential_lines, describe_status, gateway_status
from modelmux.config import loader, model_facts, paths
from modelmux.config.paths import find_config
from modelmux.config.types import Config, Profile
from modelmux.cli.launcher import (
    AUTH_CONFLICT,
    LaunchError,
    apply_environment,
    auth_conflict,
    client_host,
    gateway_command,
    installed_example_note,
    profile_environment,
    profile_of,
    profile_port,
    uses_passthrough,
)
from modelmux.cli.procs import Gateway

CLAUDE_MISSING = "claude not found on PATH; install it with `npm install -g @anthropic-ai/claude-code`"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Claude's arguments pass verbatim: argparse never sees what follows the first `--`.
    own, claude_args = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    parser = build_parser()
    args, unknown = parser.parse_known_args(own)
    if unknown:
        hint = "; put claude's arguments after `--`: modelmux run PROFILE -- ARGS" if args.command == "run" else ""
        parser.error(f"unrecognized arguments: {' '.join(unknown)}{hint}")
    if "--" in argv and args.command != "run":
        parser.error("only `modelmux run` takes arguments after `--`")
    try:
        return COMMANDS[args.command](args, claude_args)
    except loader.ConfigError as e:
        print(e, file=sys.stderr)
        return 2
    except LaunchError as e:
        print(f"modelmux: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130


def load_config(explicit: str | None) -> Config:
    return loader.load(find_config(explicit, os.environ))


def gateway_for(cfg: Config, port: int | None = None) -> Gateway:
    return Gateway(client_host(cfg.server.host), port or cfg.server.port, paths.state_dir(os.environ),
                   cfg.server.own_key)


def serve(args: argparse.Namespace, _: list[str]) -> int:
    """The gateway in the foreground (`modelmux.cli.foreground`): signals reach mitmproxy and
    its exit status is ours."""
    cfg = load_config(args.config)
    gateway = gateway_for(cfg, args.port)
    argv = gateway_command(cfg, gateway.port, os.environ, args.web, args.web_port, args.record)
    if info := gateway.health():
        raise LaunchError(
            f"modelmux is already running on {gateway.address} (pid {procs.reported_pid(info)}); "
            "stop it with `modelmux stop`"
        )
    ensure_ports_free(cfg, gateway)
    if note := installed_example_note(cfg.path, os.environ):
        _note(note)
    # mitmweb prints its UI's address with the token it makes up, once it listens.
    web = f"  web UI: http://127.0.0.1:{args.web_port or MITMWEB_DEFAULT_PORT}/ (with the token mitmweb prints)" \
        if args.web else ""
    print(f"modelmux: serving {cfg.path} on http://{gateway.address}  overview: {gateway.overview_url}{web}",
          file=sys.stderr, flush=True)
    if args.record:
        print(f"modelmux: recording the session to {args.record}", file=sys.stderr, flush=True)
    try:
        return foreground.hand_over(argv, os.environ, os.environ, gateway.write_pid)
    except OSError as e:
        gateway.forget_pid()
        raise LaunchError(f"cannot run {argv[0]}: {e.strerror}") from e


def discovered(cfg: Config) -> model_facts.Discovered:
    """What the providers' model lists reported of their models, as the gateway or
    `modelmux check` last saw them: the facts routes.yaml does not give."""
    return model_facts.load_discovered(model_facts.discovered_path(cfg.path, os.environ))


def run(args: argparse.Namespace, claude_args: list[str]) -> int:
    """Claude Code as a profile, against a healthy gateway: reused, or started detached
    so it outlives this session and serves the next one."""
    cfg = load_config(args.config)
    values, unset = profile_environment(cfg, args.profile, os.environ, discovered(cfg))
    profile = profile_of(cfg, args.profile)
    claude = shutil.which("claude")
    if claude is None:
        raise LaunchError(CLAUDE_MISSING, 127)
    gateway = gateway_for(cfg)
    port = profile_port(cfg, profile)
    if info := gateway.health(port):
        check_reusable(cfg, profile, gateway, info, args.web)
    else:
        start_background(cfg, profile, gateway, port, args.web, args.web_port)
    env = apply_environment(os.environ, values, unset)
    if uses_passthrough(cfg, profile) and auth_conflict(os.environ):
        _note(AUTH_CONFLICT)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        return foreground.hand_over([claude, *claude_args], env, os.environ, lambda pid: None)
    except OSError as e:
        raise LaunchError(f"cannot run {claude}: {e.strerror}", 126) from e


def check_reusable(cfg: Config, profile: Profile, gateway: Gateway, info: dict[str, Any], web: bool) -> None:
    """A running gateway serves this profile only if its routes.yaml defines it."""
    pid = procs.reported_pid(info)
    if "config" not in info:
        raise LaunchError(f"the gateway on {gateway.address} has a gateway key (server.api_key) other than {cfg.path}'s; "
                          "stop it with `modelmux stop` and run again, or give both the same server.api_key")
    running = info["config"]
    if profile.name not in (running.get("profiles") or []):
        raise LaunchError(
            f"the gateway on {gateway.address} (pid {pid}) runs {running.get('path')}, which has no profile "
            f"'{profile.name}'; stop it with `modelmux stop` and run again"
        )
    if running.get("path") != str(cfg.path):
        _note(f"reusing the gateway on {gateway.address} (pid {pid}), which runs {running.get('path')}, not {cfg.path}")
    if web:
        _note(f"--web ignored: reusing the running gateway (pid {pid}); `modelmux stop` first to start it with the web UI")


def start_background(
    cfg: Config, profile: Profile, gateway: Gateway, port: int, web: bool, web_port: int | None
) -> None:
    argv = gateway_command(cfg, gateway.port, os.environ, web, web_port, log=gateway.log_file)
    if port != gateway.port and (info := gateway.health()):
        raise LaunchError(
            f"the gateway on {gateway.address} (pid {procs.reported_pid(info)}) does not listen on profile "
            f"'{profile.name}''s port {port}; restart it: `modelmux stop`, then run again"
        )
    ensure_ports_free(cfg, gateway)
    info = procs.start(gateway, argv, port, os.environ)
    if note := installed_example_note(cfg.path, os.environ):
        _note(note)
    _note(f"started the gateway on {gateway.address} (pid {procs.reported_pid(info)}, log {gateway.log_file})")
    if web:
        url = procs.web_ui_url(gateway.log_file) or f"http://127.0.0.1:{web_port or MITMWEB_DEFAULT_PORT}"
        _note(f"web UI: {url}  overview: {gateway.overview_url}")


def ensure_ports_free(cfg: Config, gateway: Gateway) -> None:
    """Name the port and the fix, rather than leave it to a bind error in the gateway's log."""
    listeners = [(gateway.port, f"pick another with --port N or server.port in {cfg.path}")]
    listeners += [
        (p.port, f"change profiles.{p.name}.port in {cfg.path}")
        for p in cfg.profiles.values()
        if p.port is not None
    ]
    for port, fix in listeners:
        if procs.port_in_use(cfg.server.host, port):
            raise LaunchError(f"port {port} on {cfg.server.host} is in use by another program; {fix}")


def env(args: argparse.Namespace, _: list[str]) -> int:
    cfg = load_config(args.config)
    values, unset = profile_environment(cfg, args.profile, os.environ, discovered(cfg))
    try:
        sys.stdout.write(shells.shell_lines(values, unset, args.shell or shells.default_shell(os.environ)))
    except shells.ShellError as e:
        raise LaunchError(str(e)) from e
    return 0


def status(args: argparse.Namespace, _: list[str]) -> int:
    cfg = load_config(args.config)
    report = gateway_status(cfg, gateway_for(cfg, args.port))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(describe_status(report))
    return 0 if report["healthy"] else 1


def stop(args: argparse.Namespace, _: list[str]) -> int:
    """The pid from /healthz is the gateway's own; the pid file is only for a gateway
    that no longer answers."""
    cfg = load_config(args.config)
    gateway = gateway_for(cfg, args.port)
    pid = procs.reported_pid(gateway.health()) or gateway.recorded_pid()
    if pid is None:
        gateway.forget_pid()
        print(f"modelmux is not running on {gateway.address}")
        return 0
    procs.terminate(pid)
    gateway.forget_pid()
    print(f"stopped the gateway on {gateway.address} (pid {pid})")
    return 0


def reset(args: argparse.Namespace, _: list[str]) -> int:
    """Only a gateway that answers as modelmux is sent the key."""
    cfg = load_config(args.config)
    gateway = gateway_for(cfg, args.port)
    if not gateway.health():
        raise LaunchError(f"modelmux is not running on {gateway.address}")
    document = gateway.reset_credentials(cfg.server.own_key, args.provider, args.label)
    what = f"credential '{args.label}'" if args.label else "every credential"
    print(f"reset {what} of provider '{args.provider}'; now:")
    print("\n".join(credential_lines(document, args.provider, args.label)))
    return 0


def usage_report(args: argparse.Namespace, _: list[str]) -> int:
    """From the running gateway; when none runs, from its usage file, so the numbers are
    there offline too. --json prints the gateway's document, or a list of both periods'."""
    cfg = load_config(args.config)
    gateway = gateway_for(cfg, args.port)
    periods = [args.days] if args.days else [1, 7]
    if gateway.health():
        reports = [gateway.usage(cfg.server.own_key, days, args.by) for days in periods]
        source = f"the gateway on {gateway.address}"
    else:
        reports = offline_usage(cfg.path, gateway, periods, args.by)
        source = reports[0]["file"]
    if args.json:
        print(json.dumps(reports[0] if args.days else reports, indent=2))
        return 0
    print(f"usage from {source}")
    for report in reports:
        print()
        print("\n".join(usage.table(report)))
    return 0


def offline_usage(config_path: Path, gateway: Gateway, periods: list[int], by: str) -> list[dict[str, Any]]:
    path = usage.usage_path(config_path, os.environ)
    paths.adopt_beside(config_path, usage.SUFFIX, path)  # a gateway that is not running cannot race this
    file = usage.UsageFile(path)
    try:
        reports = usage.reports_from(file, periods, by, time.time())
    except OSError as e:
        raise LaunchError(
            f"modelmux is not running on {gateway.address}, and {file.path} cannot be read ({e.strerror})"
        ) from e
    _note(f"modelmux is not running on {gateway.address}; these numbers are from {file.path}")
    if problem := file.skipped_problem():
        _note(problem.text())
    return reports


def replay(args: argparse.Namespace, _: list[str]) -> int:
    from modelmux.addons import replayer  # mitmproxy's flow files: only when replaying

    try:
        return replayer.run(args.files, args.update)
    except ValueError as e:  # a file that is not a recording
        raise LaunchError(str(e), 2) from e


def import_logins(args: argparse.Namespace, _: list[str]) -> int:
    return import_command.run(args.paths, args.dir, args.dry_run, args.json, Path.home(), os.environ, time.time())
def check(args: argparse.Namespace, _: list[str]) -> int:
    from modelmux.cli import check as check_command  # httpx: only when probing

    deep = None
    if args.deep:
        if args.offline:
            raise LaunchError("check: --deep sends requests; it cannot be --offline", 2)
        deep = check_command.Deep(args.provider, args.model)
    elif args.provider or args.model:
        raise LaunchError("check: --provider and --model narrow --deep; add --deep", 2)
    try:
        return check_command.run(find_config(args.config, os.environ), args.offline, args.json, os.environ,
                                 capabilities=deep)  # fmt: skip
    except ValueError as e:  # --provider or --model names nothing in routes.yaml
        raise LaunchError(f"check: {e}", 2) from e


def login_command(args: argparse.Namespace, claude_args: list[str]) -> int:
    from modelmux.oauth import login  # httpx and the callback server: only when logging in

    return login.command(args, claude_args)


def _note(message: str) -> None:
    print(f"modelmux: {message}", file=sys.stderr)


COMMANDS: dict[str, Callable[[argparse.Namespace, list[str]], int]] = {
    "serve": serve,
    "run": run,
    "env": env,
    "status": status,
    "stop": stop,
    "reset": reset,
    "usage": usage_report,
    "replay": replay,
    "import": import_logins,
    "login": login_command,
    "check": check,
}

if __name__ == "__main__":
    sys.exit(main())

"""The `modelmux` command line: its commands and their options (modelmux/cli/main.py runs them)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from modelmux import __version__, usage
from modelmux.cli import shells

MITMWEB_DEFAULT_PORT = 8081


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelmux", description="A local gateway that lets Claude Code use any LLM provider."
    )
    parser.add_argument("--version", action="version", version=f"modelmux {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", metavar="PATH",
        help="routes.yaml (default: $MODELMUX_CONFIG, ./routes.yaml, ~/.config/modelmux/routes.yaml, the bundled one)",
    )  # fmt: skip
    web = argparse.ArgumentParser(add_help=False)
    web.add_argument("--web", action="store_true", help="run mitmweb, with its flow inspector UI")
    web.add_argument("--web-port", type=_port, metavar="N", help=f"the UI's port (default {MITMWEB_DEFAULT_PORT})")
    port = argparse.ArgumentParser(add_help=False)
    port.add_argument("--port", type=_port, metavar="N", help="the gateway's port instead of server.port")

    serve = commands.add_parser("serve", parents=[common, web, port], help="run the gateway in the foreground")
    serve.add_argument(
        "--record", metavar="FILE", type=Path,
        help="append the session's flows to FILE, secrets scrubbed, for `modelmux replay`",
    )  # fmt: skip
    run = commands.add_parser(
        "run", parents=[common, web], help="start Claude Code as PROFILE (starting the gateway if needed)",
        usage="modelmux run PROFILE [--web] [--config PATH] [-- CLAUDE ARGS...]",
    )  # fmt: skip
    run.add_argument("profile", metavar="PROFILE")
    env = commands.add_parser("env", parents=[common], help="print PROFILE's environment as shell lines")
    env.add_argument("profile", metavar="PROFILE")
    env.add_argument("--shell", choices=shells.SHELLS, help="the syntax to print (default: from $SHELL; on Windows "
                     "PowerShell or cmd, whichever runs modelmux)")
    status = commands.add_parser("status", parents=[common, port], help="is the gateway running and healthy?")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    commands.add_parser("stop", parents=[common, port], help="stop the gateway")
    reset = commands.add_parser(
        "reset", parents=[common, port], help="clear the cooldowns of PROVIDER's credential LABEL, or of all of them"
    )
    reset.add_argument("provider", metavar="PROVIDER")
    reset.add_argument("label", metavar="LABEL", nargs="?", help="a credential's label (default: all of PROVIDER's)")
    counts = commands.add_parser(
        "usage", parents=[common, port], help="requests, errors, tokens and time to first token, per provider, "
        "credential and model (today and the last 7 days)",
    )  # fmt: skip
    counts.add_argument("--days", type=_days, metavar="N", help="the last N days, today included (1: today)")
    counts.add_argument(
        "--by", choices=list(usage.GROUPINGS), default="all",
        help="one row per provider, model, credential, or (all, the default) provider, credential and model",
    )  # fmt: skip
    counts.add_argument("--json", action="store_true", help="print the gateway's JSON report(s)")
    replay = commands.add_parser(
        "replay", help="replay recorded flows against this modelmux and show what changed",
        description="Replay each flow of FILE (recorded with `modelmux serve --record`): the recorded "
        "upstream answers play back, and what the client gets and what is sent upstream are compared "
        "with the recording. Exit status 1 when anything differs.",
    )  # fmt: skip
    replay.add_argument("files", metavar="FILE", nargs="+", type=Path, help="a recording (`modelmux serve --record FILE`)")
    replay.add_argument(
        "--update", action="store_true",
        help="rewrite each recording's expectations (client answer, upstream requests) from this run",
    )  # fmt: skip
    logins = commands.add_parser(
        "import", help="copy the logins of Claude Code, the Codex CLI and CLIProxyAPI into modelmux token files",
        description="List the logins found in PATHs (files, or directories of them; default: Claude Code's, the "
        "Codex CLI's and CLIProxyAPI's usual places), copy each into a token file (0600) and print the routes.yaml "
        "line that uses it. The originals are only read.",
    )  # fmt: skip
    logins.add_argument("paths", metavar="PATH", nargs="*", type=Path, help="a credential file or a directory of them")
    logins.add_argument("--dir", type=Path, metavar="TOKENS_DIR", help="where token files go (default ~/.config/modelmux/tokens)")
    logins.add_argument("--dry-run", action="store_true", help="list what would be imported, and write nothing")
    logins.add_argument("--json", action="store_true", help="print what was found and done as JSON")
    add_login_parser(commands, common)
    check = commands.add_parser(
        "check", parents=[common], help="validate routes.yaml, then ask each provider and credential whether it works",
        description="Check routes.yaml (schema, providers, ${VAR}s, aliases, profile slots, fallbacks, efforts), then "
        "ask each provider, with each of its credentials: its model list (GET /models; /v1/models for anthropic) and, "
        "where routes.yaml names a model it serves, one request asking for one token. A passthrough provider is only "
        "asked whether it answers (your own login is not checked). Prints a table and a summary naming every provider "
        "that could not be checked. No secret is printed.",
        epilog="exit status: 0 every provider checked and passed; 1 something is wrong (routes.yaml, or a provider "
        "failed); 2 routes.yaml does not load; 3 nothing failed, but some provider could not be checked (no model "
        "named and no usable model list: add one to its `models`). With --offline: 0 or 1, nothing is probed. "
        "With --deep: 1 also when a provider's first request failed, 3 when a probe got no answer or no model "
        "was named; 2 when --provider or --model names nothing.",
    )  # fmt: skip
    check.add_argument("--offline", action="store_true", help="only check the file; send no request")
    check.add_argument("--json", action="store_true", help="print the problems and probes as JSON")
    check.add_argument(
        "--deep", action="store_true",
        help="find out what each provider and model really does (streamed usage, parallel tool calls, tool-call "
        "ids, reasoning, the max-tokens field, images, PDFs, output limit, context window) with at most 10 small "
        "requests each, and print the routes.yaml lines that follow; the file is not changed",
    )  # fmt: skip
    check.add_argument("--provider", metavar="NAME", help="with --deep: only this provider")
    check.add_argument("--model", metavar="NAME", help="with --deep: this model (as sent to --provider; without "
                       "--provider, routed as the gateway routes it)")
    return parser


def add_login_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    from modelmux.oauth.kinds import KINDS

    login = commands.add_parser(
        "login", parents=[common], help="log in to a subscription (OAuth) and add it to routes.yaml as a credential",
        description="Log in with KIND's OAuth flow (authorization code with PKCE; the browser comes back to "
        "127.0.0.1), save the token file (owner-only) and add the credential to --provider in routes.yaml, "
        "or print the lines to add. No token is ever printed.",
    )  # fmt: skip
    login.add_argument("kind", metavar="KIND", choices=list(KINDS), help=f"one of: {', '.join(KINDS)}")
    login.add_argument("--label", required=True, help="the credential's label; the file is KIND-LABEL.json")
    login.add_argument("--provider", metavar="NAME", help="add the credential to this provider of routes.yaml")
    login.add_argument("--dir", type=Path, metavar="D", help="where token files go (default ~/.config/modelmux/tokens)")
    login.add_argument("--paste", action="store_true",
                       help="no local browser: print the URL, then read the redirected URL or code from stdin")
    login.add_argument("--device", action="store_true", help="a device-code login (none of the kinds offers one yet)")
    login.add_argument("--no-browser", action="store_true", help="print the URL instead of opening a browser")
    login.add_argument("--port", type=_port, metavar="N", help="the callback's port (default: the kind's own)")
    login.add_argument("--authorize-url", metavar="URL", help="for tests and self-hosted endpoints")
    login.add_argument("--token-url", metavar="URL", help="for tests and self-hosted endpoints")
    login.add_argument("--base-url", metavar="URL", help="where the login's requests go instead of the kind's own "
                       "(Code Assist for Google logins); kept in the token file, for tests and self-hosted endpoints")


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (1-65535)")
    return int(text)


def _days(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= usage.MAX_DAYS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days (1-{usage.MAX_DAYS})")
    return int(text)

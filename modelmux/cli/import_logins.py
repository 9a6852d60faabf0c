"""`modelmux import`: find the logins Claude Code, the Codex CLI and CLIProxyAPI left on
this machine, copy them into modelmux token files, and show the routes.yaml lines
that use them. Nothing it prints or returns holds a token."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from modelmux.oauth import tokens
from modelmux.oauth.imports import Found, Outcome, discover, import_to, places, when

# Claude and Codex rotate refresh tokens, and each is good for one refresh (codex-rs
# login/src/auth/manager.rs: "refresh token was already used"): a copy and its
# original share one login until one of them refreshes.
ROTATING = ("claude", "codex")
SHARED_LOGIN_NOTE = (
    "note: Claude and Codex refresh tokens are single-use, so a copy and its original share one login: "
    "after the tool refreshes its own, run `modelmux import` again; after modelmux refreshes, the tool "
    "must log in again. `modelmux login` gives modelmux a login of its own."
)
DRY_RUN_WORDS = {"wrote": "would write", "replaced": "would replace", "kept": "would keep", "refused": "would refuse"}
PLAIN = re.compile(r"[A-Za-z0-9_./~@-]+")  # what YAML reads as the same string unquoted


def run(paths: Sequence[Path], directory: Path | None, dry_run: bool, as_json: bool, home: Path,
        environ: Mapping[str, str], now: float, out: TextIO | None = None) -> int:
    """Exit status 1 when nothing could be imported or a copy was refused."""
    out = out or sys.stdout
    directory = (directory.expanduser() if directory else tokens.default_directory(environ, home)).absolute()
    found = discover(home, environ, paths)
    results = [(f, import_to(f, directory, dry_run) if f.token else None) for f in found]
    if as_json:
        document = {"directory": str(directory), "dry_run": dry_run,
                    "found": [entry(f, outcome, home) for f, outcome in results]}
        out.write(json.dumps(document, indent=2) + "\n")
    elif not found:
        looked = ", ".join(shown(p, home) for p in (paths or places(home, environ)))
        out.write(f"no logins found in {looked}; pass a file or directory: modelmux import PATH\n")
    else:
        out.write("\n".join(listing(results, home, now, dry_run)) + "\n")
    usable = [o for _, o in results if o is not None and o.action != "refused"]
    refused = [o for _, o in results if o is not None and o.action == "refused"]
    return 0 if usable and not refused else 1


def listing(results: list[tuple[Found, Outcome | None]], home: Path, now: float, dry_run: bool) -> list[str]:
    words = DRY_RUN_WORDS if dry_run else {}
    lines: list[str] = []
    for found, outcome in results:
        lines.append(f"{found.origin}  {shown(found.path, home)}" if found.origin else shown(found.path, home))
        if outcome is None:
            lines.append(f"  not imported: {found.reason}")
            lines += [f"  instead: {found.fix}"] if found.fix else []
            continue
        lines.append(f"  {describe(found, now)}")
        if found.missing:
            lines.append(f"  has no {', '.join(found.missing)}, which {found.kind} requests need")
            lines += [f"  {project_hint(found, outcome, home)}"] if "project_id" in found.missing else []
        detail = f": {outcome.detail}" if outcome.detail else ""
        lines.append(f"  {words.get(outcome.action, outcome.action)} {shown(outcome.path, home)}{detail}")
    imported = [(f, o) for f, o in results if o is not None and o.action != "refused"]
    for protocol in dict.fromkeys(f.protocol for f, _ in imported):
        chosen = [(f, o) for f, o in imported if f.protocol == protocol]
        # Two sources of one account share a token file, and so a line.
        lines += ["", f"routes.yaml: add to the credentials of a provider with protocol {protocol}:"]
        lines += dict.fromkeys(f"  {routes_line(f, o, home)}" for f, o in chosen)
    if any(f.kind in ROTATING for f, _ in imported):
        lines += ["", SHARED_LOGIN_NOTE]
    return lines


def project_hint(found: Found, outcome: Outcome, home: Path) -> str:
    """Import stays offline (it only copies files), so the Code Assist call that finds a
    Google login's project is left to `modelmux login`, which makes it."""
    assert found.label is not None and found.kind is not None
    label = found.label.removeprefix(f"{found.kind}-") if found.label != found.kind else "NAME"
    return (f"to fix: `modelmux login {found.kind} --label {label}` logs in again and finds the project "
            f"(GOOGLE_CLOUD_PROJECT=ID chooses one), or add \"project_id\": \"ID\" to {shown(outcome.path, home)}")


def describe(found: Found, now: float) -> str:
    token = found.token
    assert token is not None and found.kind is not None
    who = f" of {token.email}" if token.email else ""
    extra = [f"ChatGPT account {token.account_id}"] if token.account_id and found.kind == "codex" else []
    extra += [f"project {token.project_id}"] if token.project_id else []
    aside = f" ({', '.join(extra)})" if extra else ""
    if token.expires_at is None:
        expiry = "expiry unknown"
    else:
        expiry = f"{'expired' if token.expires_at <= now else 'expires'} {when(token.expires_at)}"
    return f"{found.kind} login{who}{aside}, {expiry}; serves protocol {found.protocol}"


def routes_line(found: Found, outcome: Outcome, home: Path) -> str:
    path = shown(outcome.path, home)
    return f"- {{label: {found.label}, oauth: {path if PLAIN.fullmatch(path) else json.dumps(path)}}}"


def entry(found: Found, outcome: Outcome | None, home: Path) -> dict[str, Any]:
    """One found file for --json: what `listing` says, as data, without the tokens."""
    token = found.token
    return {
        "source": str(found.path),
        "origin": found.origin,
        "kind": found.kind,
        "email": token.email if token else None,
        "account_id": token.account_id if token else None,
        "project_id": token.project_id if token else None,
        "expires_at": token.expires_at if token else None,
        "protocol": found.protocol,
        "missing": found.missing,
        "label": found.label,
        "token_file": str(outcome.path) if outcome else None,
        "action": outcome.action if outcome else None,
        "detail": outcome.detail if outcome else None,
        "routes_line": routes_line(found, outcome, home) if outcome and outcome.action != "refused" else None,
        "reason": found.reason,
        "fix": found.fix,
    }


def shown(path: Path, home: Path) -> str:
    """`path` as a user would type it: under home, with ~ (routes.yaml expands it)."""
    try:
        return f"~/{path.relative_to(home)}"
    except ValueError:
        return str(path)

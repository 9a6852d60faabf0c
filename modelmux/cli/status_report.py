"""What `modelmux status` reports: the gateway's health, its config and every
credential's state, as data (for --json) and as text. Never a secret: credentials
come from the gateway already redacted."""

from __future__ import annotations

from typing import Any

from modelmux.cli import procs
from modelmux.cli.launcher import LaunchError
from modelmux.cli.procs import Gateway
from modelmux.config.file_problems import line
from modelmux.config.types import Config
from modelmux.credentials.cooldowns import POLICIES, span


def gateway_status(cfg: Config, gateway: Gateway) -> dict[str, Any]:
    """What `status` shows. Built from /healthz, the config summary and the credential
    pools (keys redacted by the gateway): never a secret."""
    info = gateway.health()
    pid = procs.reported_pid(info) or gateway.recorded_pid()
    healthy = info is not None and info.get("status") == "ok"
    pools, pools_error = credential_pools(cfg, gateway) if healthy else (None, None)
    return {
        "address": f"http://{gateway.address}",
        "port": gateway.port,
        "running": bool(info) or pid is not None,
        "healthy": healthy,
        "pid": pid,
        "version": info.get("version") if info else None,
        "config": info.get("config") if info else None,
        "listeners": info.get("listeners") if info else None,
        "reload_error": info.get("reload_error") if info else None,
        "file_problems": info.get("file_problems") if info else None,  # None: not running, or older than them
        "state": info.get("state") if info else None,  # None: not running, or older than a shared state
        "requested_config": str(cfg.path),
        "port_taken": not info and pid is None and procs.port_in_use(cfg.server.host, gateway.port),
        # A running gateway says where its output goes (nowhere but its terminal under
        # `modelmux serve`); of one that is not running, the last background start's log.
        "log": info.get("log") if info else str(gateway.log_file) if gateway.log_file.is_file() else None,
        "credentials": pools,
        "credentials_error": pools_error,
    }


def credential_pools(cfg: Config, gateway: Gateway) -> tuple[dict[str, Any] | None, str | None]:
    """The gateway's credential document, or why there is none: an older gateway, or
    another server.api_key than this routes.yaml's."""
    try:
        return gateway.credentials(cfg.server.own_key), None
    except LaunchError as e:
        return None, str(e)


def describe_status(report: dict[str, Any]) -> str:
    head = f"modelmux gateway {report['address']}: "
    if not report["running"] or not report["config"]:
        state = f"running (pid {report['pid']}) but /healthz does not answer" if report["running"] else "not running"
        if report["version"]:  # it answered, but shows its details only with its own key
            state = (f"running (version {report['version']}) with a gateway key other than "
                     f"{report['requested_config']}'s server.api_key, so it shows no details")
        taken = f"; port {report['port']} is in use by another program" if report["port_taken"] else ""
        log = [f"  last log:     {report['log']} (of the last gateway started in the background)"] if report["log"] else []
        return "\n".join([f"{head}{state}{taken}", *log])
    log = f"  log:          {report['log'] or 'none: its output goes to the terminal that runs it (modelmux serve)'}"
    summary = report["config"]
    lines = [
        f"{head}{'healthy' if report['healthy'] else 'unhealthy'} (pid {report['pid']}, version {report['version']})",
        f"  config:       {summary.get('path')}",
        f"  providers:    {', '.join(summary.get('providers') or []) or 'none'}",
        f"  routes:       {_routes_text(summary)}",
        f"  aliases:      {summary.get('aliases')}",
        f"  profiles:     {', '.join(summary.get('profiles') or []) or 'none'}",
        f"  listeners:    {', '.join(report['listeners'] or [])}",
        log,
    ]
    if summary.get("path") != report["requested_config"]:
        lines.append(f"  note:         not {report['requested_config']}, which this command was given")
    if report["reload_error"]:
        lines.append(f"  reload error: {report['reload_error']}")
    if report["state"] and report["state"].get("backend") == "redis":
        lines.append(f"  state:        {state_text(report['state'])}")
    if report["file_problems"]:
        lines += ["problems with its files:", *(f"  {line(problem)}" for problem in report["file_problems"])]
    return "\n".join(lines + credentials_section(report))


def state_text(state: dict[str, Any]) -> str:
    """A gateway of a fleet (state: {backend: redis}): shared, or on its own since when."""
    where = f"shared through Redis at {state['server']} (keys {state['prefix']}:*, this gateway {state['instance']})"
    if state["status"] == "connected":
        return f"{where}, connected since {state['since']}"
    return (f"DEGRADED since {state['since']} ({state['for']}): {state['reason']}; serving on this gateway's own "
            f"state, resyncs when Redis at {state['server']} answers (next try {state['next_try']})")


def _routes_text(summary: dict[str, Any]) -> str:
    """routes.yaml's own routes, then what else routes a model: `1; 3 models listed under
    providers; anything else → anthropic`."""
    parts = [f"{summary.get('routes')} under routes:"]
    if summary.get("provider_models"):
        parts.append(f"{summary['provider_models']} models listed under providers")
    parts.append(f"anything else → {summary['default']}" if summary.get("default") else "no default")
    return "; ".join(parts)


# How providers without credentials send their requests, by their `auth`.
UNPOOLED = {"passthrough": "auth: passthrough (the client's own token)", "none": "auth: none (no credential sent)"}


def credentials_section(report: dict[str, Any]) -> list[str]:
    if report["credentials_error"]:
        return [f"credentials unavailable: {report['credentials_error']}"]
    document = report["credentials"]
    if document is None:
        return []
    lines = credential_lines(document)
    section = [f"credentials at {document['at']}:", *lines] if lines else ["credentials: none"]
    section += breaker_lines(document)
    # An older gateway's document does not name the providers without credentials.
    if unpooled := document.get("without_credentials"):
        rows = aligned([[name, UNPOOLED.get(auth, auth)] for name, auth in unpooled.items()])
        section += ["without credentials:", *(f"  {row}" for row in rows)]
    section += client_login_lines(document)
    section += client_key_lines(document)
    return section


def client_key_lines(document: dict[str, Any]) -> list[str]:
    """The gateway's keys and what each may use (a gateway without keys, or an older
    one, names none): `  alice  profiles work; providers deepseek; 12 of 30 requests in the last minute`."""
    rows = []
    for key in document.get("client_keys") or []:
        limits = [f"{name} {', '.join(key[name])}" for name in ("profiles", "providers") if key[name] is not None]
        if key["rpm"] is not None:
            limits.append(f"{key['last_minute']} of {key['rpm']} requests in the last minute (this gateway)")
        if key["admin"]:
            limits.append("admin")
        rows.append([key["label"], "; ".join(limits) or "no limits"])
    return ["client keys:", *(f"  {row}" for row in aligned(rows))] if rows else []


def client_login_lines(document: dict[str, Any]) -> list[str]:
    """The client's own logins heard on passthrough, each with its quota (an older
    gateway's document has none)."""
    lines = []
    for login in document.get("client_logins") or []:
        kind = f"{login['kind']} login" if login["kind"] else "login"
        lines += [f"  {login['provider']}  client's {kind} {login['login']}", f"    {quota_text(login['quota'])}"]
    return ["client logins on passthrough (by a fingerprint of their token):", *lines] if lines else []


def credential_lines(document: dict[str, Any], provider: str | None = None, label: str | None = None) -> list[str]:
    """One aligned line per credential (of `provider`, with `label`, when given), each
    followed by its active cooldowns."""
    chosen = [
        (name, credential)
        for name, pool in document["providers"].items()
        if provider in (None, name)
        for credential in pool["credentials"]
        if label in (None, credential["label"])
    ]
    rows = aligned([_credential_cells(name, credential) for name, credential in chosen])
    lines = []
    for row, (_, credential) in zip(rows, chosen, strict=True):
        lines += [f"  {row}", *(f"    {_cooldown_text(c)}" for c in credential["cooldowns"])]
        if quota := credential.get("quota"):  # an older gateway's document has none
            lines.append(f"    {quota_text(quota)}")
        if login := credential.get("login"):
            lines.append(f"    {_login_text(login)}")
    return lines


def _credential_cells(provider: str, credential: dict[str, Any]) -> list[str]:
    errors = credential["errors"]
    return [
        provider,
        f"{credential['label']} ({credential['key']})",
        credential["state"],
        f"in flight {credential['in_flight']}",
        f"requests {credential['requests']} ({errors} error{'s' * (errors != 1)})",
        f"tokens {credential['input_tokens']} in / {credential['output_tokens']} out",
    ]


def quota_text(quota: dict[str, Any]) -> str:
    """`quota (anthropic, seen 2026-…Z): 5h 42% used, resets … (in 2 h 3 min); 7d 18% used …; allowed`."""
    windows = []
    for window in quota["windows"]:
        if window.get("reset"):  # an older gateway's document does not say
            windows.append(f"{window['name']} reset at {window['resets_at']}")
            continue
        used = "" if window["used"] is None else f" {window['used'] * 100:.0f}% used"
        resets = f", resets {window['resets_at']} (in {span(window['seconds_left'])})" if window["resets_at"] else ""
        refused = f" {window['status']}" if window["status"] not in (None, "allowed") else ""
        windows.append(f"{window['name']}{used}{resets}{refused}")
    verdict = f"; {quota['status']}" if quota["status"] else ""
    if quota["status"] == "rejected" and quota["resets_at"]:
        verdict += f" until {quota['resets_at']}"
    return f"quota ({quota['source']}, seen {quota['seen_at']}): {'; '.join(windows) or 'no windows named'}{verdict}"


def _login_text(login: dict[str, Any]) -> str:
    who = f" {login['email']}" if login["email"] else ""
    expiry = f", token expires {login['expires_at']}" if login["expires_at"] else ""
    if login["needs_login"]:
        return f"{login['kind']} login{who}: needs a new login: {login['needs_login']}"
    return f"{login['kind']} login{who} ({login['file']}{expiry})"


def _cooldown_text(cooldown: dict[str, Any]) -> str:
    status = cooldown["status"]
    # next_cooldown's reasons lead with the status ("429: rate limited; ..."); it goes in brackets instead.
    reason = cooldown["reason"].removeprefix(f"{status}: ")
    # A soft cooldown blocks nothing (docs/credentials.md): say so, or "until" reads as a block.
    # An older gateway's document has no "firm": its cooldowns all blocked.
    how = "" if cooldown.get("firm", True) else ", tried last"
    return (
        f"{POLICIES[cooldown['kind']].state}{how} until {cooldown['until']} (in {span(cooldown['seconds_left'])}) "
        f"for {cooldown['model'] or 'every model'}: {reason} [{status}]"
    )


def breaker_lines(document: dict[str, Any]) -> list[str]:
    """The providers whose breaker is not closed (an older gateway's document has none)."""
    rows = []
    for name, pool in document["providers"].items():
        breaker = pool.get("breaker") or {"state": "closed"}
        if breaker["state"] == "open":
            rows.append([name, f"open until {breaker['until']}: {breaker['reason']}; tried after the route's "
                               "other providers, one credential per request"])
        elif breaker["state"] == "half-open":
            rows.append([name, f"half-open: {breaker['reason']}; one request at a time is sent as its probe"])
    return ["breakers:", *(f"  {row}" for row in aligned(rows))] if rows else []


def aligned(rows: list[list[str]]) -> list[str]:
    widths = [max(len(cell) for cell in column) for column in zip(*rows, strict=True)]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]

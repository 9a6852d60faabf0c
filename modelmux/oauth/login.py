"""`modelmux login KIND --label NAME`: a subscription's OAuth login (authorization code
with PKCE), its token file, and its credential in routes.yaml.

The browser comes back to a one-shot server on 127.0.0.1; on a machine without one,
`--paste` prints the URL and reads back the redirected URL (or the code a provider's
page shows). No token, refresh token or code is ever printed: only the file's path.
The pure steps (URLs, bodies, answers) are in `modelmux.oauth.flow`.
"""

from __future__ import annotations

import argparse
import errno
import os
import queue
import socket
import sys
import threading
import time
import webbrowser
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import httpx

from modelmux.config.paths import bundled_config, find_config
from modelmux.credentials.cooldowns import span
from modelmux.oauth import code_assist, flow, tokens
from modelmux.oauth.enroll import EnrollError, Enrollment
from modelmux.oauth.flow import Callback, FlowError
from modelmux.oauth.kinds import KINDS, Kind
from modelmux.oauth.tokens import Token

DEFAULT_TIMEOUT = 300.0  # gemini-cli also gives the browser 5 minutes
EXCHANGE_TIMEOUT = 30.0
LABEL_CHARACTERS = "letters, digits, '.', '_', '-' and '@'"


class LoginError(Exception):
    """A login that cannot go on; the message names the cause and the fix."""


@dataclass(frozen=True)
class Login:
    kind: Kind
    label: str
    directory: Path  # where the token file goes
    config_path: Path | None  # the user's routes.yaml; None: there is none, print the lines
    provider: str | None = None  # add the credential to this provider of routes.yaml
    paste: bool = False
    device: bool = False
    open_browser: bool = True
    port: int | None = None
    # For tests and self-hosted endpoints: the kind's authorize and token URLs replaced.
    authorize_endpoint: str | None = None
    token_endpoint: str | None = None
    base_url: str | None = None  # where the login's requests go (Code Assist), kept in the token file
    timeout: float = DEFAULT_TIMEOUT

    @property
    def token_path(self) -> Path:
        return self.directory / f"{self.kind.name}-{self.label}.json"


def command(args: argparse.Namespace, _: list[str]) -> int:
    """`modelmux login`, from its parsed arguments (cli/main.py); 1 and one message on failure."""
    try:
        login = Login(
            kind=kind_named(args.kind),
            label=args.label,
            directory=args.dir.expanduser() if args.dir else tokens.default_directory(os.environ),
            config_path=user_config(find_config(args.config, os.environ)),
            provider=args.provider,
            paste=args.paste,
            device=args.device,
            open_browser=not args.no_browser,
            port=args.port,
            authorize_endpoint=args.authorize_url,
            token_endpoint=args.token_url,
            base_url=args.base_url,
        )
        return run(login)
    except LoginError as e:
        print(f"modelmux login: {e}", file=sys.stderr)
        return 1


def kind_named(name: str) -> Kind:
    if name not in KINDS:
        raise LoginError(f"'{name}' is not a login modelmux knows; known: {', '.join(KINDS)}")
    return KINDS[name]


def user_config(found: Path) -> Path | None:
    """The routes.yaml `find_config` chose, unless it fell back to the bundled example,
    which a login must not edit."""
    return None if found.resolve() == bundled_config().resolve() else found


def run(login: Login, stdin: IO[str] | None = None, out: IO[str] | None = None, err: IO[str] | None = None,
        browser: Callable[[str], Any] | None = None, now: Callable[[], float] = time.time,
        environ: Mapping[str, str] = os.environ) -> int:  # fmt: skip
    """The whole login. Raises LoginError."""
    stdin, out, err = stdin or sys.stdin, out or sys.stdout, err or sys.stderr
    browser = browser or webbrowser.open
    check_label(login.label)
    if login.device:
        raise LoginError(
            f"{login.kind.name} offers no device-code login (RFC 8628) that modelmux can use; on a machine "
            f"without a browser run `modelmux login {login.kind.name} --label {login.label} --paste`"
        )
    try:  # a routes.yaml mistake is named before the browser opens
        plan = Enrollment.plan(login.kind, login.label, login.token_path, login.config_path, login.provider)
    except EnrollError as e:
        raise LoginError(str(e)) from e
    verifier, challenge = flow.pkce()
    state = flow.new_state()
    if login.paste:
        callback, redirect = pasted_callback(login, state, challenge, stdin, err)
    else:
        callback, redirect = browser_callback(login, state, challenge, browser, err)
    token = exchange(login, callback, verifier, redirect, now())
    if login.token_endpoint:  # a login from another endpoint refreshes there too
        token = replace(token, token_url=login.token_endpoint)
    if login.base_url:
        token = replace(token, base_url=login.base_url)
    if "project_id" in login.kind.needs:
        token = with_project(token, login.kind, environ, err)
    existed = login.token_path.exists()
    try:
        tokens.write(login.token_path, token)
    except OSError as e:
        raise LoginError(f"cannot write the token file {login.token_path} ({e.strerror}); pick another --dir") from e
    who = f" as {token.email}" if token.email else ""
    lasts = f", valid for {span(token.expires_at - now())}" if token.expires_at else ""
    _say(err, f"logged in to {login.kind.name}{who}; token {'replaced in' if existed else 'saved to'} "
              f"{login.token_path} (owner-only{lasts})")  # fmt: skip
    plan.apply(token, out, lambda message: _say(err, message))
    return 0


def with_project(token: Token, kind: Kind, environ: Mapping[str, str], err: IO[str]) -> Token:
    """A Google login with the Cloud project its requests need, asked of Code Assist;
    unchanged, with the reason said, when it cannot be found (Enrollment.apply then
    prints how to add it by hand)."""
    try:
        with httpx.Client() as client:
            project = code_assist.discover_project(client, kind, token, environ)
    except code_assist.ProjectError as e:
        _say(err, f"could not find the Google Cloud project of this login: {e}")
        return token
    _say(err, f"its Google Cloud project is {project} (from Code Assist)")
    return replace(token, project_id=project)


def check_label(label: str) -> None:
    if not label or not all(c.isalnum() or c in "._-@" for c in label) or label[0] in ".-":
        raise LoginError(f"--label {label!r}: use {LABEL_CHARACTERS} (it names the token file), e.g. --label work")


# --- The authorization code --------------------------------------------------------------


def browser_callback(login: Login, state: str, challenge: str, browser: Callable[[str], Any],
                     err: IO[str]) -> tuple[Callback, str]:  # fmt: skip
    with CallbackServer(login.kind, state, callback_ports(login)) as server:
        redirect = flow.redirect_uri(login.kind, server.port)
        url = flow.authorize_url(login.kind, redirect, state, challenge, login.authorize_endpoint)
        _say(err, f"log in to {login.kind.description} in your browser:\n\n    {url}\n")
        if login.open_browser:
            browser(url)
        _say(err, f"waiting for the browser on 127.0.0.1:{server.port} (up to {span(login.timeout)}; Ctrl-C stops)")
        return checked(server.wait(login.timeout, login), state), redirect


def callback_ports(login: Login) -> list[int]:
    if login.port is not None:
        return [login.port]
    registered = [p for p in (login.kind.redirect_port, login.kind.redirect_fallback_port) if p is not None]
    return registered or [0]


def pasted_callback(login: Login, state: str, challenge: str, stdin: IO[str], err: IO[str]) -> tuple[Callback, str]:
    """The headless login: the user opens the URL anywhere, then pastes what the provider
    shows (a code) or, when its redirect goes to a loopback nothing listens on, the
    address the browser could not open."""
    kind = login.kind
    redirect = kind.manual_redirect or flow.redirect_uri(kind, login.port or kind.redirect_port or _free_port())
    url = flow.authorize_url(kind, redirect, state, challenge, login.authorize_endpoint)
    then = ("copy the code the page shows" if kind.manual_redirect else
            "your browser ends on a page that does not load: copy its whole address")  # fmt: skip
    _say(err, f"open this URL in a browser on any machine and log in to {kind.description}:\n\n    {url}\n\n"
              f"then {then}, and paste it here.")  # fmt: skip
    err.write("> ")
    err.flush()
    line = stdin.readline()
    if not line.strip():
        raise LoginError("nothing was pasted; run the login again")
    try:
        return checked(flow.parse_callback(line), state, pasted=True), redirect
    except FlowError as e:
        raise LoginError(f"cannot use what was pasted: {e}") from e


def checked(callback: Callback, state: str, pasted: bool = False) -> Callback:
    """Refuse an error answer and a callback for another login (RFC 6749 §10.12: the
    state binds the answer to this request). A pasted bare code carries no state:
    the user copied it from the provider's own page."""
    if callback.error:
        detail = f" ({callback.error_description})" if callback.error_description else ""
        raise LoginError(f"the login was not granted: {callback.error}{detail}")
    if callback.state != state and not (pasted and callback.state is None):
        raise LoginError("refused the answer: its state does not match this login's (an older login's tab, "
                         "or a forged redirect); run the login again")  # fmt: skip
    if not callback.code:
        raise LoginError("the answer has no code; run the login again")
    return callback


class CallbackServer:
    """A one-shot HTTP server on 127.0.0.1 for the browser's redirect back. Binds the
    first free port of `ports` (0: any)."""

    def __init__(self, kind: Kind, state: str, ports: list[int]) -> None:
        self.results: queue.Queue[Callback] = queue.Queue()
        handler = type("Handler", (_CallbackHandler,), {"kind": kind, "state": state, "results": self.results})
        self.server = _bind(ports, handler, kind)
        self.port: int = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), name="modelmux-login",
                                        daemon=True)

    def __enter__(self) -> CallbackServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait(self, timeout: float, login: Login) -> Callback:
        try:
            return self.results.get(timeout=timeout)
        except queue.Empty:
            raise LoginError(
                f"no answer from the browser within {span(timeout)}; run the login again, or use "
                f"`modelmux login {login.kind.name} --label {login.label} --paste`"
            ) from None


class _Server(HTTPServer):
    allow_reuse_address = False  # on Windows it would let two servers share the port


def _bind(ports: list[int], handler: type[BaseHTTPRequestHandler], kind: Kind) -> HTTPServer:
    for port in ports:
        try:
            return _Server(("127.0.0.1", port), handler)
        except OSError as e:
            if e.errno not in (errno.EADDRINUSE, errno.EACCES, getattr(errno, "WSAEADDRINUSE", -1)):
                raise LoginError(f"cannot listen on 127.0.0.1:{port} for the browser ({e.strerror})") from e
    taken = " and ".join(str(p) for p in ports)
    registered = [p for p in (kind.redirect_port, kind.redirect_fallback_port) if p is not None]
    fix = (f"the {kind.name} login only comes back to {' or '.join(map(str, registered))} (the port(s) its client "
           "id is registered for): stop that program (another login?)" if ports == registered else
           "pick another --port")  # fmt: skip
    raise LoginError(f"port {taken} on 127.0.0.1 is in use by another program; {fix}, or log in with --paste")


class _CallbackHandler(BaseHTTPRequestHandler):
    kind: Kind
    state: str
    results: queue.Queue[Callback]

    def do_GET(self) -> None:
        if urlsplit(self.path).path != self.kind.redirect_path:
            self._page(404, "Not the login callback.")
            return
        try:
            callback = flow.parse_callback(f"http://127.0.0.1{self.path}")
        except FlowError as e:
            self._page(400, f"modelmux login: {e}.")
            return
        if callback.error:
            self._page(400, f"modelmux login was not granted: {callback.error}. You can close this tab.")
        elif callback.state != self.state:
            self._page(400, "modelmux login refused this answer: it belongs to another login. Run the login again.")
        else:
            self._page(200, "modelmux is logged in. You can close this tab.")
        self.results.put(callback)

    def _page(self, status: int, text: str) -> None:
        body = f"<!doctype html><title>modelmux login</title><p>{text}</p>\n".encode()
        self.send_response(status)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request line carries the code


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- The token --------------------------------------------------------------------------


def exchange(login: Login, callback: Callback, verifier: str, redirect: str, now: float) -> Token:
    """The code traded for tokens at the token endpoint."""
    assert callback.code is not None
    url, headers, body = flow.token_request(login.kind, callback.code, verifier, redirect, callback.state,
                                            login.token_endpoint)  # fmt: skip
    try:
        response = httpx.post(url, headers=headers, content=body, timeout=EXCHANGE_TIMEOUT)
    except httpx.HTTPError as e:
        raise LoginError(f"cannot reach the token endpoint {url}: {e}") from e
    if response.status_code != 200:
        raise LoginError(f"the token endpoint {url} refused the code ({response.status_code}: "
                         f"{oauth_error(response)}); run the login again")  # fmt: skip
    try:
        return flow.token_from_response(login.kind, response.json(), now)
    except (ValueError, FlowError) as e:
        raise LoginError(f"the token endpoint {url} answered without a usable token ({e})") from e


def oauth_error(response: httpx.Response) -> str:
    """An OAuth error answer's `error` and `error_description` (RFC 6749 §5.2), never
    the rest of the body."""
    try:
        data = response.json()
    except ValueError:
        return response.reason_phrase or "no details"
    if not isinstance(data, dict) or not isinstance(data.get("error"), (str, dict)):
        return response.reason_phrase or "no details"
    error: Any = data["error"]
    described = data.get("error_description")
    if isinstance(error, dict):  # Anthropic-style {"error": {"type", "message"}}
        error, described = error.get("type") or "error", error.get("message")
    return str(error)[:80] + (f": {str(described)[:200]}" if described else "")


def _say(err: IO[str], message: str) -> None:
    err.write(f"modelmux: {message}\n")
    err.flush()

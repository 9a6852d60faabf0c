"""The gateway as a process: its health, its state files, starting it detached and stopping it.

A gateway is reused only when its /healthz answers as modelmux: a live pid alone says
nothing (pids are reused, and a hung gateway serves nobody).
"""

from __future__ import annotations

import errno
import http.client
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelmux.cli import windows
from modelmux.cli.launcher import LaunchError, url_host
from modelmux.headers import KEY_HEADER

HEALTH_TIMEOUT = 1.0
CREDENTIALS_PATH = "/modelmux/credentials"
RESET_PATH = "/modelmux/credentials/reset"
USAGE_PATH = "/modelmux/usage"
OVERVIEW_PATH = "/modelmux/overview"  # the gateway's page (modelmux/addons/overview.py)
MAX_ANSWER = 1 << 20
POLL_INTERVAL = 0.1
START_TIMEOUT = 30.0
START_TIMEOUT_ENV = "MODELMUX_START_TIMEOUT"
STOP_GRACE = 5.0
KILL_GRACE = 2.0
LOG_TAIL_LINES = 12
# Our own `--set modelmux_config=` argument: how a pid from a pid file is told apart
# from an unrelated process that reused it.
GATEWAY_MARK = b"modelmux_config="
START_MARK = "modelmux starts:"  # heads each start's lines in the log
# mitmweb 11+ guards its UI with a token it makes up and prints only in this line.
WEB_UI_LINE = re.compile(r"Web server listening at (\S+)")
WEB_UI_WAIT = 2.0


@dataclass(frozen=True)
class Gateway:
    """A gateway named by its main port, and where its pid file and log live."""

    host: str  # the address clients dial
    port: int
    state_dir: Path
    key: str | None = None  # its server.api_key: /healthz says more to a request that has it

    @property
    def address(self) -> str:
        return f"{url_host(self.host)}:{self.port}"

    @property
    def overview_url(self) -> str:
        return f"http://{self.address}{OVERVIEW_PATH}"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / f"gateway-{self.port}.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / f"gateway-{self.port}.log"

    def health(self, port: int | None = None) -> dict[str, Any] | None:
        return health(self.host, port or self.port, key=self.key)

    def credentials(self, key: str | None) -> dict[str, Any]:
        return credentials(self.host, self.port, key)

    def reset_credentials(self, key: str | None, provider: str, label: str | None) -> dict[str, Any]:
        return reset_credentials(self.host, self.port, key, provider, label)

    def usage(self, key: str | None, days: int, by: str) -> dict[str, Any]:
        return usage(self.host, self.port, key, days, by)

    def recorded_pid(self) -> int | None:
        """The pid file's pid, if that process is alive and still a gateway."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if alive(pid) and is_gateway_process(pid) else None

    def write_pid(self, pid: int) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.pid_file.write_text(f"{pid}\n")

    def forget_pid(self) -> None:
        self.pid_file.unlink(missing_ok=True)


def reported_pid(info: Mapping[str, Any] | None) -> int | None:
    """The pid a gateway reports in /healthz: its own, so the one to signal."""
    pid = info.get("pid") if info else None
    return pid if isinstance(pid, int) and pid > 0 else None


def health(host: str, port: int, timeout: float = HEALTH_TIMEOUT, key: str | None = None) -> dict[str, Any] | None:
    """The gateway's /healthz document, or None when nothing answers as modelmux there.
    A gateway with a key tells a request without it only that it is modelmux; the key
    (`key`, server.api_key) is sent only once it has said so, never to another program
    that happens to listen on the port. Without the right key, the document has no
    `config` (main.check_reusable and `status` say so)."""
    body = _health(host, port, {}, timeout)
    if body is not None and key and "config" not in body:
        return _health(host, port, {KEY_HEADER: key}, timeout) or body
    return body


def _health(host: str, port: int, headers: dict[str, str], timeout: float) -> dict[str, Any] | None:
    try:
        _, answer = _exchange(host, port, "GET", "/healthz", headers, None, timeout)
        body = json.loads(answer)
    except (OSError, http.client.HTTPException, ValueError):
        return None
    if not isinstance(body, dict) or body.get("service") != "modelmux":
        return None
    return body


def credentials(host: str, port: int, key: str | None, timeout: float = HEALTH_TIMEOUT) -> dict[str, Any]:
    """The gateway's credential pools (`credentials.snapshot.snapshot`): keys only redacted."""
    return _call(host, port, "GET", CREDENTIALS_PATH, key, None, timeout)


def reset_credentials(
    host: str, port: int, key: str | None, provider: str, label: str | None, timeout: float = HEALTH_TIMEOUT
) -> dict[str, Any]:
    """Clear the cooldowns of `provider`'s credential `label` (None: all of them); the
    gateway answers with the snapshot as it is afterwards."""
    body = {"provider": provider} | ({"label": label} if label is not None else {})
    return _call(host, port, "POST", RESET_PATH, key, body, timeout)


def usage(host: str, port: int, key: str | None, days: int, by: str, timeout: float = HEALTH_TIMEOUT) -> dict[str, Any]:
    """The gateway's usage report of the last `days` local days, grouped `by`."""
    return _call(host, port, "GET", f"{USAGE_PATH}?days={days}&by={by}", key, None, timeout)


def _call(
    host: str, port: int, method: str, path: str, key: str | None, body: dict[str, Any] | None, timeout: float
) -> dict[str, Any]:
    """One request to the gateway's own API, with its key (server.api_key) when it has
    one. Raises LaunchError naming the address and the gateway's own message, never the key."""
    where = f"{method} {path} on {url_host(host)}:{port}"
    headers = {KEY_HEADER: key} if key else {}
    try:
        status, answer = _exchange(host, port, method, path, headers, body, timeout)
    except (OSError, http.client.HTTPException) as e:
        raise LaunchError(f"{where} got no answer ({e})") from e
    try:
        document = json.loads(answer)
    except ValueError:
        document = None
    if status != 200:
        message = _error_message(document) or "no Anthropic error message (is this modelmux?)"
        if key:  # no gateway message names the key today; this keeps it off the terminal if one ever did
            message = message.replace(key, "…")
        raise LaunchError(f"{where} failed with {status}: {message}")
    if not isinstance(document, dict):
        raise LaunchError(f"{where} answered 200 with something other than a JSON object")
    return document


def _exchange(
    host: str, port: int, method: str, path: str, headers: dict[str, str], body: dict[str, Any] | None, timeout: float
) -> tuple[int, bytes]:
    """One plain-HTTP request to the gateway: its status and up to MAX_ANSWER bytes of its body."""
    payload = json.dumps(body).encode() if body is not None else None
    if payload is not None:
        headers = headers | {"content-type": "application/json"}
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request(method, path, payload, headers)
        response = connection.getresponse()
        return response.status, response.read(MAX_ANSWER)
    finally:
        connection.close()


def _error_message(document: Any) -> str | None:
    """The message of an Anthropic error envelope, which is how the gateway refuses."""
    error = document.get("error") if isinstance(document, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) else None


def port_in_use(host: str, port: int) -> bool:
    """Whether a listener would fail to bind host:port. SO_REUSEADDR as asyncio sets it,
    so connections in TIME_WAIT do not count as "in use"."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror:
        return False  # the gateway will report the bad host itself
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as e:
            return e.errno == errno.EADDRINUSE
    return False


def alive(pid: int) -> bool:
    """Whether `pid` runs; a zombie (exited, not yet reaped) does not."""
    if os.name == "nt":
        return windows.alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): kill(0) is all we know
    return stat.rpartition(")")[2].split()[0] != "Z"


def is_gateway_process(pid: int) -> bool:
    """Whether `pid`'s command line is a gateway's. Unknown (no /proc, no ps: Windows)
    counts as no: a pid file alone never names a gateway."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        try:
            command = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True).stdout
        except OSError:
            return False
    return GATEWAY_MARK in command


def spawn_detached(argv: list[str], log_file: Path) -> int:
    """Start `argv` in a session of its own with output appended to `log_file`, and
    return its pid. Forked twice so it is init's child, not `run`'s: `run` becomes
    claude, which would never reap it, and a stopped gateway would linger as a zombie."""
    if not hasattr(os, "fork"):
        return windows.spawn_detached(argv, log_file)
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked child
        os.close(read_end)
        try:
            with open(log_file, "ab") as log:
                process = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
                )
            os.write(write_end, f"pid {process.pid}".encode())
        except BaseException as e:  # noqa: BLE001 - reported to the parent, which raises
            os.write(write_end, f"error {e}".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        answer = reader.read().decode(errors="replace")
    os.waitpid(child, 0)
    kind, _, detail = answer.partition(" ")
    if kind != "pid":
        raise LaunchError(f"cannot start the gateway ({argv[0]}): {detail or 'no answer from the forked launcher'}")
    return int(detail)


def start(gateway: Gateway, argv: list[str], port: int, environ: Mapping[str, str]) -> dict[str, Any]:
    """Start the gateway in the background and wait until /healthz on `port` answers;
    its pid file names it meanwhile, so `modelmux stop` can end a start that hangs."""
    gateway.state_dir.mkdir(parents=True, exist_ok=True)
    with open(gateway.log_file, "a", encoding="utf-8") as log:
        log.write(f"\n== {time.strftime('%Y-%m-%d %H:%M:%S')} {START_MARK} {shlex.join(argv)}\n")
    offset = log_size(gateway.log_file)
    pid = spawn_detached(argv, gateway.log_file)
    gateway.write_pid(pid)
    try:
        info = wait_healthy(gateway, pid, port, offset, environ)
    except BaseException:  # also Ctrl-C: no half-started gateway is left behind
        gateway.forget_pid()
        if alive(pid):
            terminate(pid)
        raise
    gateway.write_pid(reported_pid(info) or pid)
    return info


def wait_healthy(gateway: Gateway, pid: int, port: int, log_offset: int, environ: Mapping[str, str]) -> dict[str, Any]:
    """Poll /healthz on `port` until the new gateway `pid` answers; if it exits first,
    the lines it logged since `log_offset` say why."""
    timeout = float(environ.get(START_TIMEOUT_ENV) or START_TIMEOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if info := gateway.health(port):
            return info
        if not alive(pid):
            if info := gateway.health(port):  # another launcher won the race for the port
                return info
            tail = log_tail(gateway.log_file, log_offset)
            raise LaunchError(
                f"the gateway (pid {pid}) exited before it became healthy on {gateway.host}:{port}; "
                f"last lines of {gateway.log_file}:\n{tail}"
            )
        time.sleep(POLL_INTERVAL)
    raise LaunchError(
        f"the gateway (pid {pid}) never became healthy on {gateway.host}:{port} within {timeout:g} s, "
        f"so it was stopped; see {gateway.log_file}"
    )


def log_tail(log_file: Path, offset: int = 0, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with open(log_file, "rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
    except OSError:
        return "  (no log)"
    tail = [line for line in text.splitlines() if line.strip()][-lines:]
    return "\n".join(f"  {line}" for line in tail) or "  (the log is empty)"


def web_ui_url(log_file: Path) -> str | None:
    """The web UI's address with its token, as the latest start logged it."""
    deadline = time.monotonic() + WEB_UI_WAIT
    while True:
        try:
            latest = log_file.read_text(errors="replace").rpartition(START_MARK)[2]
        except OSError:
            latest = ""
        if found := WEB_UI_LINE.search(latest):
            return found.group(1)
        if time.monotonic() >= deadline:
            return None
        time.sleep(POLL_INTERVAL)


def log_size(log_file: Path) -> int:
    try:
        return log_file.stat().st_size
    except OSError:
        return 0


def terminate(pid: int, grace: float = STOP_GRACE) -> None:
    """SIGTERM, then SIGKILL if the process is still there after `grace` seconds."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    except PermissionError as e:
        raise LaunchError(f"not allowed to stop pid {pid} (it belongs to another user)") from e
    if _wait_gone(pid, grace):
        return
    try:
        os.kill(pid, getattr(signal, "SIGKILL", signal.SIGTERM))  # Windows: SIGTERM is TerminateProcess already
    except ProcessLookupError:
        return
    _wait_gone(pid, KILL_GRACE)


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True

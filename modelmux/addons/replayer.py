"""Replayer: runs recorded flows against the current code and says what changed.

For a recording it starts two processes: mitmproxy's server replay as every provider's
upstream, answering from the recorded upstream answers (a separate process: inside the
gateway it would answer before the gateway's own stream translation runs), and the
gateway with the recorded routes.yaml, its providers redirected to that server and its
secrets replaced by dummies. It sends each recorded client request, in order (a file
is a session: its flows share one gateway, as they did when recorded), and compares
what the client gets now, and what went upstream now, with the recording.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
from mitmproxy import http

from modelmux import config, procs
from modelmux.addons import recordings
from modelmux.addons.recordings import REPLAY_TARGET, Recording, as_text
from modelmux.config import Config
from modelmux.headers import CLIENT_AUTH_HEADERS, KEY_HEADER, PROFILE_HEADER
from modelmux.launcher import LaunchError, find_program, gateway_command
from modelmux.replay import REPLAY_HEADER, Answer, Side, differences
from modelmux.scrubbing import KEY_PARAMS

logger = logging.getLogger(__name__)

START_TIMEOUT = 30.0
ANSWER_TIMEOUT = 120.0  # one replayed request; the upstream answers at once
DUMMY_CLIENT_TOKEN = "sk-ant-modelmux-replay-client-token"
# The client's own framing; httpx frames the replayed request itself.
UNSENT_CLIENT_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
HTTPX_DEFAULTS = ("accept", "accept-encoding", "user-agent")  # added by httpx unless recorded


@dataclass
class Result:
    recording: Recording
    diff: str = ""  # "" when the client's answer and the upstream requests are as recorded
    skipped: str | None = None  # why the flow was not replayed
    updated: http.HTTPFlow | None = None  # the recording with this run's expectations

    @property
    def name(self) -> str:
        return self.recording.name

    @property
    def passed(self) -> bool:
        return self.skipped is None and not self.diff


def names(path: Path, flows: list[http.HTTPFlow]) -> list[str]:
    """A readable, stable name per flow: file name, position, method, path and model."""
    named = []
    for number, flow in enumerate(flows, 1):
        model = ((flow.metadata.get("modelmux") or {}).get("summary") or {}).get("requested_model")
        named.append(f"{path.name}#{number} {flow.request.method} {flow.request.path.partition('?')[0]}"
                     + (f" {model}" if model else ""))
    return named


def replay_file(path: Path) -> list[Result]:
    """Replay every flow of a recording file. Raises ValueError if it cannot be read."""
    flows = recordings.read(path)
    items = [Recording(flow, name) for flow, name in zip(flows, names(path, flows), strict=True)]
    results: list[Result] = []
    for group in _sessions(items):
        with tempfile.TemporaryDirectory(prefix="modelmux-replay-") as work:
            results += Session(group, Path(work)).run()
    return results


def update_file(path: Path, results: list[Result]) -> int:
    """Rewrite the recording with each replayed flow's new expectations; returns how many
    flows changed."""
    flows = [r.updated or r.recording.flow for r in results]
    recordings.write(path, flows)
    return sum(1 for r in results if r.updated is not None and r.diff)


def _sessions(items: list[Recording]) -> Iterator[list[Recording]]:
    """Consecutive flows that ran with the same routes.yaml share a gateway."""
    group: list[Recording] = []
    for item in items:
        if group and item.routes != group[0].routes:
            yield group
            group = []
        group.append(item)
    if group:
        yield group


class Session:
    """One gateway and one replay server for consecutive flows of a recording."""

    def __init__(self, items: list[Recording], work: Path) -> None:
        self.items = items
        self.work = work
        self.replayable = [item for item in items if item.problem() is None]

    def run(self) -> list[Result]:
        results = {id(item): Result(item, skipped=item.problem()) for item in self.items}
        if not self.replayable:
            return list(results.values())
        try:
            answers, now = self._replay()
        except (LaunchError, config.ConfigError, ValueError) as e:
            for item in self.replayable:
                results[id(item)].skipped = f"could not replay: {e}"
            return list(results.values())
        for number, item in enumerate(self.replayable):
            result = results[id(item)]
            fresh = now.get(number)
            sent = recordings.sent_of(fresh) if fresh is not None else []
            result.diff = differences(item.expected(), Side(answers[number], sent), item.name)
            if fresh is not None:
                result.updated = item.updated(fresh)
        return list(results.values())

    def _replay(self) -> tuple[list[Answer], dict[int, http.HTTPFlow]]:
        routes = self.work / "routes.yaml"
        routes.writeas_text(config.without_ports(self.items[0].routes))
        dummies = {name: f"modelmux-replay-{name}" for name in config.variables(routes.readas_text())}
        cfg = config.load(routes, dummies)
        upstream = self.work / "upstream.mitm"
        recordings.write(upstream, [f for item in self.replayable for f in item.upstream_flows()])
        record = self.work / "now.mitm"
        server_port, gateway_port = _free_port(), _free_port()
        env = {**os.environ, **dummies}
        with contextlib.ExitStack() as stack:
            server = stack.enter_context(Child(_server_command(upstream, server_port), self.work / "server.log", env))
            gateway = stack.enter_context(Child(
                _gateway_command(cfg, gateway_port, env, f"http://127.0.0.1:{server_port}", record),
                self.work / "gateway.log", env,
            ))
            server.wait_listening(server_port)
            gateway.wait_healthy(gateway_port)
            with httpx.Client(base_url=f"http://127.0.0.1:{gateway_port}", trust_env=False,
                              timeout=ANSWER_TIMEOUT) as client:
                answers = [_send(client, item, number, cfg) for number, item in enumerate(self.replayable)]
        flows = recordings.read(record) if record.exists() else []
        return answers, _by_number(flows)


def _send(client: httpx.Client, item: Recording, number: int, cfg: Config) -> Answer:
    """The recorded client request, its auth replaced by dummies, marked with its number."""
    method, path, recorded, body = item.client_request()
    headers = [(n, v) for n, v in recorded if n.lower() not in UNSENT_CLIENT_HEADERS]
    present = {n.lower() for n, _ in headers}
    headers = [(n, _dummy_auth(n, v, cfg)) for n, v in headers]
    if cfg.server.api_key and KEY_HEADER not in present:
        headers.append((KEY_HEADER, cfg.server.api_key))
    profile = item.summary.get("profile")
    if profile and PROFILE_HEADER not in present:  # it came on the profile's own port
        headers.append((PROFILE_HEADER, profile))
    headers.append((REPLAY_HEADER, str(number)))
    request = client.build_request(method, path, headers=headers, content=body)
    for name in HTTPX_DEFAULTS:
        if name not in present:
            del request.headers[name]
    try:
        response = client.send(request)
    except httpx.HTTPError as e:
        return Answer(0, [], f"no answer from the gateway: {e}".encode())
    return Answer(response.status_code, list(response.headers.multi_items()), response.content)


def _dummy_auth(name: str, value: str, cfg: Config) -> str:
    lower = name.lower()
    if lower == KEY_HEADER:
        return cfg.server.api_key or value
    if lower not in CLIENT_AUTH_HEADERS:
        return value
    scheme, _, _ = value.rpartition(" ")
    return f"{scheme} {DUMMY_CLIENT_TOKEN}".lstrip()


def _by_number(flows: list[http.HTTPFlow]) -> dict[int, http.HTTPFlow]:
    """The gateway's records of the replayed requests, by the number each was sent with."""
    found = {}
    for flow in flows:
        captured = (flow.metadata.get("modelmux") or {}).get("client_request") or {}
        headers = captured.get("headers") or flow.request.headers.fields
        for name, value in headers:
            if as_text(name).lower() == REPLAY_HEADER and as_text(value).isdigit():
                found[int(as_text(value))] = flow
    return found or dict(enumerate(flows))  # a capture without the client's headers: in order


def _server_command(flows: Path, port: int) -> list[str]:
    program = find_program("mitmdump", os.environ)
    if program is None:
        raise LaunchError("mitmdump not found beside this Python or on PATH; reinstall with `pip install -e .`")
    argv = [
        program, "-q",
        "--mode", f"reverse:{REPLAY_TARGET.scheme}://{REPLAY_TARGET.netloc}@127.0.0.1:{port}",
        "--set", "connection_strategy=lazy",  # never dial the target: nothing listens there
        "--server-replay", str(flows),
        "--set", "server_replay_ignore_host", "--set", "server_replay_ignore_port",
        "--set", "server_replay_extra=404",
    ]  # fmt: skip
    for param in KEY_PARAMS:  # the recorded query holds REDACTED, the replayed one a dummy key
        argv += ["--set", f"server_replay_ignore_params={param}"]
    return argv


def _gateway_command(cfg: Config, port: int, env: Mapping[str, str], redirect: str, record: Path) -> list[str]:
    local = dataclasses.replace(cfg, server=dataclasses.replace(cfg.server, host="127.0.0.1"))
    return [
        *gateway_command(local, port, env),
        "--set", f"modelmux_redirect_upstreams={redirect}",
        "--set", f"modelmux_record={record}",
    ]  # fmt: skip


class Child:
    """A mitmdump process of the replay, its output in a log, stopped on exit."""

    def __init__(self, argv: list[str], log: Path, env: Mapping[str, str]) -> None:
        self.argv = argv
        self.log = log
        self.env = dict(env)
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Child:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=self.env)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(procs.STOP_GRACE)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def wait_listening(self, port: int) -> None:
        self._wait(lambda: _accepts(port), f"listen on port {port}")

    def wait_healthy(self, port: int) -> None:
        self._wait(lambda: procs.health("127.0.0.1", port) is not None, f"answer /healthz on port {port}")

    def _wait(self, ready, what: str) -> None:
        assert self.process
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if ready():
                return
            if self.process.poll() is not None:
                raise LaunchError(f"{Path(self.argv[0]).name} exited before it would {what}:\n{procs.log_tail(self.log)}")
            time.sleep(procs.POLL_INTERVAL / 2)
        raise LaunchError(f"{Path(self.argv[0]).name} did not {what} within {START_TIMEOUT:g} s; see {self.log}")


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]

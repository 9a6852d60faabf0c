"""Replayer: runs recorded flows against the current code and says what changed.

Two kinds of process do it. The replay server is mitmproxy's own server replay, as every
provider's upstream, answering from a session's recorded upstream answers (its own
process: inside the gateway's, it would answer before the gateway's stream translation
runs). The gateway is the current code with the recorded routes.yaml, every provider
redirected to the replay server and every secret a dummy. Each recorded client request
is sent in order (a file is a session, as it was recorded), and what the client gets
now, and what went upstream now, are compared with the recording.
"""

from __future__ import annotations

import contextlib
import dataclasses
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

from modelmux.addons import playback
from modelmux.addons.notes import read_notes
from modelmux.addons.playback import CONTROL_PATH
from modelmux.cli import procs
from modelmux.cli.launcher import LaunchError, find_program, gateway_command
from modelmux.config import loader
from modelmux.config.types import Config
from modelmux.headers import CLIENT_AUTH_HEADERS, KEY_HEADER, PROFILE_HEADER
from modelmux.replay import config_text, recordings
from modelmux.replay.compare import REPLAY_HEADER, Answer, Side, differences
from modelmux.replay.recordings import REPLAY_TARGET, Recording, as_text
from modelmux.replay.scrubbing import KEY_PARAMS

START_TIMEOUT = 30.0
RECORD_WAIT = 10.0
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


def names(path: Path, flows: list[http.HTTPFlow]) -> list[str]:
    """A readable, stable name per flow: file name, position, method, path and model."""
    named = []
    for number, flow in enumerate(flows, 1):
        notes = read_notes(flow)
        client = notes.get("client_request") or {}
        client_path = (client.get("path") or flow.request.path).partition("?")[0]
        model = (notes.get("summary") or {}).get("requested_model")
        named.append(f"{path.name}#{number} {client.get('method') or flow.request.method} {client_path}"
                     + (f" {model}" if model else ""))
    return named


def run(paths: list[Path], update: bool = False) -> int:
    """`modelmux replay`: each file's flows, a line per flow and a diff per difference;
    with `update`, each file rewritten with its new expectations. 1 when anything
    differs (and was not updated), else 0. Raises ValueError for an unreadable file."""
    differ = 0
    with Replayer() as replayer:
        for path in paths:
            results = replayer.replay_file(path)
            for result in results:
                if result.skipped:
                    print(f"skipped  {result.name}: {result.skipped}")
                elif result.diff:
                    differ += 1
                    print(f"DIFFERS  {result.name}\n{result.diff}\n")
                else:
                    print(f"same     {result.name}")
            if update:
                changed = update_file(path, results)
                print(f"updated {path}: {changed} flow{'s' * (changed != 1)} with new expectations")
    return 1 if differ and not update else 0


def replay_file(path: Path) -> list[Result]:
    """Replay every flow of one recording file. Raises ValueError if it cannot be read."""
    with Replayer() as replayer:
        return replayer.replay_file(path)


def update_file(path: Path, results: list[Result]) -> int:
    """Rewrite the recording with each replayed flow's new expectations; returns how many
    flows changed."""
    flows = [r.updated or r.recording.flow for r in results]
    recordings.write(path, flows)
    return sum(1 for r in results if r.updated is not None and r.diff)


class Replayer:
    """Replays recording files: one replay server for all of them, one gateway per
    routes.yaml, reused from file to file unless a pool's state (a round-robin position,
    a session's affinity) could make one file's replay depend on another's."""

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self._work = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="modelmux-replay-")))
        self._server: ReplayServer | None = None
        self._gateways: dict[str, ReplayGateway] = {}
        self._sessions = 0

    def __enter__(self) -> Replayer:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def replay_file(self, path: Path) -> list[Result]:
        """Each flow of the file, in order. Raises ValueError if it cannot be read."""
        flows = recordings.read(path)
        items = [Recording(flow, name) for flow, name in zip(flows, names(path, flows), strict=True)]
        return [result for group in _sessions(items) for result in self._session(group)]

    def _session(self, items: list[Recording]) -> list[Result]:
        results = [Result(item, skipped=item.problem()) for item in items]
        replayable = [result for result in results if result.skipped is None]
        if not replayable:
            return results
        try:
            answers, now = self._replay([result.recording for result in replayable])
        except (LaunchError, loader.ConfigError, ValueError, httpx.HTTPError) as e:
            for result in replayable:
                result.skipped = f"could not replay: {e}"
            return results
        for result, answer, fresh in zip(replayable, answers, now, strict=True):
            item = result.recording
            sent = recordings.sent_of(fresh) if fresh is not None else []
            result.diff = differences(item.expected(), Side(answer, sent), item.name)
            if fresh is not None:
                result.updated = item.updated(fresh)
        return results

    def _replay(self, items: list[Recording]) -> tuple[list[Answer], list[http.HTTPFlow | None]]:
        self._sessions += 1
        work = self._work / f"session-{self._sessions}"
        work.mkdir()
        if self._server is None:  # started first: it comes up while the gateway does
            self._server = self._stack.enter_context(ReplayServer(self._work))
        upstream = work / "upstream.mitm"
        recordings.write(upstream, [f for item in items for f in item.upstream_flows()])
        gateway = self._gateways.get(items[0].routes)
        if gateway is None:
            gateway = self._stack.enter_context(ReplayGateway(items[0].routes, work, self._server.origin))
            if gateway.reusable:
                self._gateways[items[0].routes] = gateway
        self._server.load(upstream)
        try:
            return gateway.replay(items)
        finally:
            if not gateway.reusable:
                gateway.__exit__()


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


class ReplayServer:
    """mitmproxy's server replay as every provider's upstream, in its own process: inside
    the gateway's, it would answer before the gateway's stream translation runs."""

    def __init__(self, work: Path) -> None:
        self.port = _free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.child = Child(_server_command(self.port), work / "server.log", os.environ)

    def __enter__(self) -> ReplayServer:
        self.child.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.child.__exit__()

    def load(self, flows: Path) -> None:
        """Answer from these flows from now on (the Playback addon's control request)."""
        self.child.wait_listening(self.port)
        try:
            answer = httpx.post(self.origin + CONTROL_PATH, content=str(flows).encode(), trust_env=False, timeout=30)
        except httpx.HTTPError as e:
            raise LaunchError(f"the replay server did not load {flows}: {e}") from e
        if answer.status_code != 200:
            raise LaunchError(f"the replay server did not load {flows}: {answer.status_code} {answer.text}")


class ReplayGateway:
    """The gateway under test: the recorded routes.yaml with dummy secrets, every provider
    redirected to the replay server, recording what it does."""

    def __init__(self, routes_text: str, work: Path, upstream: str) -> None:
        routes = work / "routes.yaml"
        routes.write_text(config_text.without_ports(routes_text))
        self.dummies = {name: f"modelmux-replay-{name}" for name in loader.variables(routes.read_text())}
        self.config = loader.load(routes, self.dummies)
        self.reusable = _order_free(self.config)
        self.record = work / "now.mitm"
        self.port = _free_port()
        env = {**os.environ, **self.dummies}
        self.child = Child(_gateway_command(self.config, self.port, env, upstream, self.record), work / "gateway.log", env)
        # A connection per request: one answer framed wrong (a HEAD with a body) must not
        # garble the next.
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", trust_env=False, timeout=ANSWER_TIMEOUT,
                                   limits=httpx.Limits(max_keepalive_connections=0))
        self.sent = 0  # requests sent so far: each is numbered, for the record to name it
        self.seen = 0  # flows of the record read so far

    def __enter__(self) -> ReplayGateway:
        self.child.__enter__()
        try:
            self.child.wait_healthy(self.port)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()
        self.child.__exit__()

    def replay(self, items: list[Recording]) -> tuple[list[Answer], list[http.HTTPFlow | None]]:
        """Send each item's client request, in order; what the client got, and the
        gateway's record of each request (None if it recorded none)."""
        key = {KEY_HEADER: self.config.server.own_key} if self.config.server.own_key else {}
        self.client.post("/modelmux/credentials/reset", json={}, headers=key)  # a fresh session's pools
        numbers = range(self.sent, self.sent + len(items))
        self.sent += len(items)
        answers = [_send(self.client, item, number, self.config) for item, number in zip(items, numbers, strict=True)]
        fresh = self._recorded(len(items))
        return answers, _matched(fresh, numbers)

    def _recorded(self, count: int) -> list[http.HTTPFlow]:
        """The `count` flows the gateway recorded since the last session. It writes a flow
        when it ends, which may be a moment after the client has the last byte."""
        deadline = time.monotonic() + RECORD_WAIT
        while True:
            try:
                flows = recordings.read(self.record)[self.seen :] if self.record.exists() else []
            except ValueError:
                flows = []  # read while a flow was half-written
            if len(flows) >= count or time.monotonic() > deadline:
                self.seen += len(flows)
                return flows
            time.sleep(procs.POLL_INTERVAL / 4)


def _order_free(cfg: Config) -> bool:
    """Whether a gateway for `cfg` answers a session the same whatever ran before it,
    once its cooldowns are reset: no round-robin over several credentials, no affinity."""
    return all(
        (len(p.credentials) <= 1 or p.strategy == "fill-first") and not p.affinity for p in cfg.providers.values()
    )


def _send(client: httpx.Client, item: Recording, number: int, cfg: Config) -> Answer:
    """The recorded client request, its auth replaced by dummies, marked with its number."""
    method, path, recorded, body = item.client_request()
    headers = [(n, v) for n, v in recorded if n.lower() not in UNSENT_CLIENT_HEADERS]
    present = {n.lower() for n, _ in headers}
    headers = [(n, _dummy_auth(n, v, cfg)) for n, v in headers]
    if cfg.server.own_key and KEY_HEADER not in present:
        headers.append((KEY_HEADER, cfg.server.own_key))
    profile = item.summary.get("profile")
    if profile and PROFILE_HEADER not in present:  # it came on the profile's own port
        headers.append((PROFILE_HEADER, profile))
    headers.append((REPLAY_HEADER, str(number)))
    request = client.build_request(method, path, headers=headers, content=body)
    for name in HTTPX_DEFAULTS:
        if name not in present:
            request.headers.pop(name, None)
    try:
        response = client.send(request)
    except httpx.HTTPError as e:
        return Answer(0, [], f"no answer from the gateway: {e}".encode())
    return Answer(response.status_code, list(response.headers.multi_items()), response.content)


def _dummy_auth(name: str, value: str, cfg: Config) -> str:
    lower = name.lower()
    if lower == KEY_HEADER:
        return cfg.server.own_key or value
    if lower not in CLIENT_AUTH_HEADERS:
        return value
    scheme, _, _ = value.rpartition(" ")
    return f"{scheme} {DUMMY_CLIENT_TOKEN}".lstrip()


def _matched(flows: list[http.HTTPFlow], numbers: range) -> list[http.HTTPFlow | None]:
    """The gateway's record of each request, found by the number it was sent with; a
    flow whose client headers were not kept (a passthrough of another path) takes the
    first number left, as requests go one at a time."""
    found: dict[int, http.HTTPFlow] = {}
    unnumbered = []
    for flow in flows:
        captured = read_notes(flow).get("client_request") or {}
        headers = captured.get("headers") or flow.request.headers.fields
        number = next((int(as_text(v)) for n, v in headers
                       if as_text(n).lower() == REPLAY_HEADER and as_text(v).isdigit()), None)
        if number in numbers:
            found[number] = flow
        else:
            unnumbered.append(flow)
    for number in numbers:
        if number not in found and unnumbered:
            found[number] = unnumbered.pop(0)
    return [found.get(number) for number in numbers]


def _server_command(port: int) -> list[str]:
    program = find_program("mitmdump", os.environ)
    if program is None:
        raise LaunchError("mitmdump not found beside this Python or on PATH; mitmproxy is a dependency of modelmux: "
                          "reinstall modelmux")
    argv = [
        program, "-q", "-s", playback.__file__,
        "--mode", f"reverse:{REPLAY_TARGET.scheme}://{REPLAY_TARGET.netloc}@127.0.0.1:{port}",
        "--set", "connection_strategy=lazy",  # never dial the target: nothing listens there
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

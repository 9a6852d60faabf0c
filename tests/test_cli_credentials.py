"""`modelmux status` and `modelmux reset` against a fake gateway that serves the
credential endpoints from a real `Pools`, so the document has the snapshot's own shape."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import pytest
from gateway import free_port

from modelmux import __version__
from modelmux.cli import main as cli
from modelmux.cli.status_report import credentials_section, state_text
from modelmux.config import loader
from modelmux.credentials import snapshot
from modelmux.credentials.pools import Pools, Usage
from modelmux.errors import error_body
from modelmux.headers import KEY_HEADER

SECRET = "mm-gateway-key-51c9"
NOW = datetime(2026, 11, 21, 9, 57, 55, tzinfo=UTC).timestamp()
ROUTES = """
server:
  port: {port}
providers:
  anthropic-pool:
    protocol: anthropic
    base_url: https://api.anthropic.com
    cooldown_scope: model
    credentials:
      - {{label: key-a, key: sk-aaaa-1111}}
      - {{label: key-b, key: sk-bbbb-2222}}
      - {{label: key-c, key: sk-cccc-3333}}
  zai:
    protocol: anthropic
    base_url: https://api.z.ai/api/anthropic
    credentials: [{{label: main, key: zai-key-4444}}]
"""
Capture = pytest.CaptureFixture[str]
SERVED = {("GET", "/modelmux/credentials"), ("POST", "/modelmux/credentials/reset")}
NOT_SERVED = "modelmux does not serve GET /modelmux/credentials; it serves POST /v1/messages"


def write_routes(path: Path, port: int, api_key: str | None = None) -> Path:
    text = ROUTES.format(port=port)
    if api_key:
        text = text.replace(f"  port: {port}\n", f"  port: {port}\n  api_key: {api_key}\n", 1)
    path.write_text(text)
    return path


class FakeGateway:
    """/healthz as modelmux answers it, and the credential endpoints over `pools`.
    `seen` keeps (method, path, headers, parsed body) of every request."""

    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.fake = self  # type: ignore[attr-defined]
        self.port = self.server.server_address[1]
        self.config = Path()
        self.pools: Pools | None = None
        self.key: str | None = None  # server.api_key the credential endpoints demand
        self.serves_credentials = True  # False: a gateway from before the endpoints
        self.seen: list[tuple[str, str, dict[str, str], Any]] = []

    def __enter__(self) -> Self:
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok", "service": "modelmux", "version": __version__, "pid": os.getpid(),
            "config": loader.load(self.config, environ={}).summary(), "reload_error": None,
            "listeners": [f"reverse:https://api.anthropic.com@127.0.0.1:{self.port}"],
        }  # fmt: skip

    def answer(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, bytes]:
        assert self.pools is not None
        if (method, path) == ("GET", "/healthz"):
            return 200, json.dumps(self.health()).encode()
        if not self.serves_credentials or (method, path) not in SERVED:
            return 404, error_body(404, NOT_SERVED)
        if self.key and headers.get(KEY_HEADER) != self.key:
            # Echoes what it got, as no real gateway does: the CLI must not print it either way.
            return 401, error_body(401, f"wrong key {headers.get(KEY_HEADER)!r}")
        if (method, path) == ("POST", "/modelmux/credentials/reset"):
            try:
                self.reset(body["provider"], body.get("label"))
            except LookupError as e:
                return 404, error_body(404, str(e.args[0]))
        return 200, json.dumps(snapshot.snapshot(self.pools)).encode()

    def reset(self, provider: str, label: str | None) -> None:
        assert self.pools is not None
        labels = [label] if label is not None else [member.label for member in self.pools.pool(provider).members]
        for each in labels:
            self.pools.reset(provider, each)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.handle_one()

    def do_POST(self) -> None:
        self.handle_one()

    def handle_one(self) -> None:
        fake: FakeGateway = self.server.fake  # type: ignore[attr-defined]
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        headers = {name.lower(): value for name, value in self.headers.items()}
        fake.seen.append((self.command, self.path, headers, body))
        status, answer = fake.answer(self.command, self.path, headers, body)
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


def used_pools(cfg: loader.Config) -> Pools:
    """key-a healthy after a success and a bad request, one request still in flight;
    key-b rate limited on claude-x; key-c refused (needs attention); zai untouched."""
    pools = Pools(cfg, now=lambda: NOW)

    def lease(label: str, model: str = "claude-x") -> Any:
        others = {"key-a", "key-b", "key-c"} - {label}
        return pools.pick("anthropic-pool", model, exclude=others)

    pools.record(lease("key-a"), 200, usage=Usage(3400, 800))
    pools.record(lease("key-a"), 400)
    lease("key-a")  # in flight
    pools.record(lease("key-b"), 429, headers={"retry-after": "125"})
    pools.record(lease("key-c"), 401)
    return pools


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGateway]:
    monkeypatch.setenv("MODELMUX_STATE_DIR", str(tmp_path / "state"))
    with FakeGateway() as gateway:
        gateway.config = write_routes(tmp_path / "routes.yaml", gateway.port)
        gateway.pools = used_pools(loader.load(gateway.config, environ={}))
        yield gateway


def run(capsys: Capture, *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def status_head(fake: FakeGateway, tmp_path: Path) -> list[str]:
    return [
        f"modelmux gateway http://127.0.0.1:{fake.port}: healthy (pid {os.getpid()}, version {__version__})",
        f"  config:       {fake.config}",
        "  providers:    anthropic-pool, zai",
        "  routes:       0 under routes:; no default",
        "  aliases:      0",
        "  profiles:     none",
        f"  listeners:    reverse:https://api.anthropic.com@127.0.0.1:{fake.port}",
        "  log:          none: its output goes to the terminal that runs it (modelmux serve)",
    ]


CREDENTIAL_LINES = [
    "credentials at 2026-11-21T09:57:55Z:",
    "  anthropic-pool  key-a (key-a…1111)  healthy          in flight 1  requests 2 (1 error)   tokens 3400 in / 800 out",
    "  anthropic-pool  key-b (key-b…2222)  cooling          in flight 0  requests 1 (1 error)   tokens 0 in / 0 out",
    (
        "    cooling until 2026-11-21T10:00:00Z (in 2 min 5 s) for claude-x: rate limited; "
        "the upstream said retry in 2 min 5 s [429]"
    ),
    "  anthropic-pool  key-c (key-c…3333)  needs attention  in flight 0  requests 1 (1 error)   tokens 0 in / 0 out",
    (
        "    needs attention until 2026-11-21T15:57:55Z (in 6 h) for every model: "
        "the key was refused (revoked, mistyped or out of credit?) [401]"
    ),
    "  zai             main (main…4444)    healthy          in flight 0  requests 0 (0 errors)  tokens 0 in / 0 out",
]


def test_status_shows_each_credential_and_its_cooldowns(fake: FakeGateway, tmp_path: Path, capsys: Capture) -> None:
    code, out, err = run(capsys, "status", "--config", str(fake.config))
    assert (code, err) == (0, "")
    assert out.splitlines() == status_head(fake, tmp_path) + CREDENTIAL_LINES
    assert [request[:2] for request in fake.seen] == [("GET", "/healthz"), ("GET", "/modelmux/credentials")]
    assert KEY_HEADER not in fake.seen[1][2]  # no server.api_key, no key header


def test_status_names_the_providers_without_credentials(fake: FakeGateway, tmp_path: Path, capsys: Capture) -> None:
    with fake.config.open("a") as routes:
        routes.write("  ollama: {protocol: openai-chat, base_url: 'http://127.0.0.1:11434/v1', auth: none}\n"
                     "  anthropic: {protocol: anthropic, base_url: 'https://api.anthropic.com', auth: passthrough}\n")
    fake.pools = used_pools(loader.load(fake.config, environ={}))
    code, out, err = run(capsys, "status", "--config", str(fake.config))
    assert (code, err) == (0, "")
    head = [line.replace("anthropic-pool, zai", "anthropic, anthropic-pool, ollama, zai") for line in status_head(fake, tmp_path)]
    assert out.splitlines() == head + CREDENTIAL_LINES + [
        "without credentials:",
        "  ollama     auth: none (no credential sent)",
        "  anthropic  auth: passthrough (the client's own token)",
    ]


def test_status_of_a_gateway_whose_providers_all_go_without_credentials() -> None:
    document = {"at": "2026-11-21T09:57:55Z", "providers": {}, "without_credentials": {"ollama": "none"}}
    report = {"credentials_error": None, "credentials": document}
    assert credentials_section(report) == ["credentials: none", "without credentials:",
                                           "  ollama  auth: none (no credential sent)"]
    del document["without_credentials"]  # a gateway from before it was named
    assert credentials_section(report) == ["credentials: none"]


def test_status_json_carries_the_gateways_document(fake: FakeGateway, capsys: Capture) -> None:
    code, out, _ = run(capsys, "status", "--json", "--config", str(fake.config))
    report = json.loads(out)
    assert code == 0
    assert fake.pools is not None
    assert report["credentials"] == snapshot.snapshot(fake.pools)
    assert report["credentials"]["providers"]["anthropic-pool"]["credentials"][1]["cooldowns"][0]["seconds_left"] == 125
    assert report["credentials_error"] is None


def test_the_gateway_key_goes_in_its_header_and_never_to_the_terminal(fake: FakeGateway, capsys: Capture) -> None:
    fake.key = SECRET
    keyed = write_routes(fake.config, fake.port, api_key=SECRET)
    assert loader.load(keyed, environ={}).server.api_key == SECRET
    outputs = [run(capsys, "status", "--config", str(keyed)), run(capsys, "reset", "zai", "--config", str(keyed))]
    assert [code for code, _, _ in outputs] == [0, 0]
    assert outputs[0][1].splitlines()[-len(CREDENTIAL_LINES) :] == CREDENTIAL_LINES
    assert [(method, path, headers.get(KEY_HEADER)) for method, path, headers, _ in fake.seen] == [
        ("GET", "/healthz", None),
        ("GET", "/modelmux/credentials", SECRET),
        ("GET", "/healthz", None),
        ("POST", "/modelmux/credentials/reset", SECRET),
    ]
    assert all(SECRET not in out + err for _, out, err in outputs)


def test_a_wrong_key_leaves_status_without_credentials_and_the_key_unprinted(
    fake: FakeGateway, tmp_path: Path, capsys: Capture
) -> None:
    fake.key = "the-right-key"
    wrong = write_routes(fake.config, fake.port, api_key=SECRET)
    code, out, err = run(capsys, "status", "--config", str(wrong))
    assert (code, err) == (0, "")
    assert out.splitlines() == status_head(fake, tmp_path) + [
        f"credentials unavailable: GET /modelmux/credentials on 127.0.0.1:{fake.port} failed with 401: wrong key '…'"
    ]
    assert SECRET not in out


def test_status_of_a_gateway_without_the_endpoint(fake: FakeGateway, tmp_path: Path, capsys: Capture) -> None:
    fake.serves_credentials = False
    why = f"GET /modelmux/credentials on 127.0.0.1:{fake.port} failed with 404: {NOT_SERVED}"
    code, out, err = run(capsys, "status", "--config", str(fake.config))
    assert (code, err) == (0, "")
    assert out.splitlines() == status_head(fake, tmp_path) + [f"credentials unavailable: {why}"]
    report = json.loads(run(capsys, "status", "--json", "--config", str(fake.config))[1])
    assert (report["healthy"], report["credentials"], report["credentials_error"]) == (True, None, why)


def test_reset_one_credential(fake: FakeGateway, capsys: Capture) -> None:
    code, out, err = run(capsys, "reset", "anthropic-pool", "key-b", "--config", str(fake.config))
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "reset credential 'key-b' of provider 'anthropic-pool'; now:",
        "  anthropic-pool  key-b (key-b…2222)  healthy  in flight 0  requests 1 (1 error)  tokens 0 in / 0 out",
    ]
    assert fake.seen[-1][:2] == ("POST", "/modelmux/credentials/reset")
    assert fake.seen[-1][2]["content-type"] == "application/json"
    assert fake.seen[-1][3] == {"provider": "anthropic-pool", "label": "key-b"}
    assert fake.pools is not None
    states = [c["state"] for c in snapshot.snapshot(fake.pools)["providers"]["anthropic-pool"]["credentials"]]
    assert states == ["healthy", "healthy", "needs attention"]


def test_reset_every_credential_of_a_provider(fake: FakeGateway, capsys: Capture) -> None:
    code, out, _ = run(capsys, "reset", "anthropic-pool", "--config", str(fake.config))
    assert code == 0
    assert out.splitlines() == [
        "reset every credential of provider 'anthropic-pool'; now:",
        "  anthropic-pool  key-a (key-a…1111)  healthy  in flight 1  requests 2 (1 error)  tokens 3400 in / 800 out",
        "  anthropic-pool  key-b (key-b…2222)  healthy  in flight 0  requests 1 (1 error)  tokens 0 in / 0 out",
        "  anthropic-pool  key-c (key-c…3333)  healthy  in flight 0  requests 1 (1 error)  tokens 0 in / 0 out",
    ]
    assert fake.seen[-1][3] == {"provider": "anthropic-pool"}


def test_reset_of_an_unknown_credential_or_provider_names_the_known_ones(fake: FakeGateway, capsys: Capture) -> None:
    failed = f"modelmux: POST /modelmux/credentials/reset on 127.0.0.1:{fake.port} failed with 404"
    unknown_label = "provider 'anthropic-pool' has no credential 'key-z'; credentials: key-a, key-b, key-c"
    assert run(capsys, "reset", "anthropic-pool", "key-z", "--config", str(fake.config)) == (
        1, "", f"{failed}: {unknown_label}\n"
    )  # fmt: skip
    unknown_provider = "provider 'openai' has no credential pool (pools: anthropic-pool, zai)"
    assert run(capsys, "reset", "openai", "--config", str(fake.config)) == (1, "", f"{failed}: {unknown_provider}\n")


def test_without_a_gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capture) -> None:
    monkeypatch.setenv("MODELMUX_STATE_DIR", str(tmp_path / "state"))
    port = free_port()
    routes = write_routes(tmp_path / "routes.yaml", port, api_key=SECRET)
    assert run(capsys, "reset", "zai", "main", "--config", str(routes)) == (
        1, "", f"modelmux: modelmux is not running on 127.0.0.1:{port}\n"
    )  # fmt: skip
    code, out, _ = run(capsys, "status", "--config", str(routes))
    assert code == 1
    assert "credentials" not in out
    report = json.loads(run(capsys, "status", "--json", "--config", str(routes))[1])
    assert (report["running"], report["credentials"], report["credentials_error"]) == (False, None, None)


def test_status_says_which_cooldowns_only_order_and_which_breakers_are_open() -> None:
    pools = Pools(loader.parse({"providers": {
        "zai": {"protocol": "anthropic", "base_url": "https://z", "credentials": [{"label": "a", "key": "zai-aaaa-1111"}]},
        "kimi": {"protocol": "anthropic", "base_url": "https://k", "credentials": [{"label": "k", "key": "kimi-kkkk-2222"}]},
    }}, Path("/x/routes.yaml"), {}), now=lambda: NOW)
    for _ in range(10):
        pools.record(pools.pick("zai", "glm"), 503, headers={"retry-after": "1"})
    lines = credentials_section({"credentials_error": None, "credentials": snapshot.snapshot(pools)})
    assert lines == [
        "credentials at 2026-11-21T09:57:55Z:",
        "  zai   a (a…1111)  unhealthy  in flight 0  requests 10 (10 errors)  tokens 0 in / 0 out",
        "    unhealthy, tried last until 2026-11-21T09:57:56Z (in 1 s) for every model: upstream error; "
        "the upstream said retry in 1 s [503]",
        "  kimi  k (k…2222)  healthy    in flight 0  requests 0 (0 errors)    tokens 0 in / 0 out",
        "breakers:",
        "  zai  open until 2026-11-21T09:58:05Z: 10 of the last 10 answers were upstream errors; tried after the "
        "route's other providers, one credential per request",
    ]


def test_status_says_whether_a_fleets_gateway_shares_its_state_or_serves_on_its_own() -> None:
    connected = {"backend": "redis", "server": "10.0.0.5:6379/0", "prefix": "modelmux", "instance": "box:4242:a1b2c3",
                 "status": "connected", "since": "2026-11-21T09:50:00Z"}
    assert state_text(connected) == ("shared through Redis at 10.0.0.5:6379/0 (keys modelmux:*, this gateway "
                                     "box:4242:a1b2c3), connected since 2026-11-21T09:50:00Z")
    degraded = {**connected, "status": "degraded", "since": "2026-11-21T09:57:00Z", "for": "55 s",
                "reason": "ConnectionError: Error 111 connecting to 10.0.0.5:6379. Connection refused.",
                "next_try": "2026-11-21T09:58:00Z"}
    assert state_text(degraded) == (
        "DEGRADED since 2026-11-21T09:57:00Z (55 s): ConnectionError: Error 111 connecting to 10.0.0.5:6379. "
        "Connection refused.; serving on this gateway's own state, resyncs when Redis at 10.0.0.5:6379/0 answers "
        "(next try 2026-11-21T09:58:00Z)")

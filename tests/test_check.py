"""modelmux check: the cross-references loading leaves out (aliases, profile slots), the
exit codes, and one-token probes against local fakes of each protocol, whose output
never holds a key."""

from __future__ import annotations

import asyncio
import io
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

import gemini_upstream
import openai_upstream
import responses_upstream
from modelmux import check_command, checks, cli, config, probe
from upstream import Received, Reply, Upstream

GOOD_KEY = "sk-good-aaaaaaaaaaaa1111"
BAD_KEY = "sk-bad-bbbbbbbbbbbbbb2222"
OAI_KEY = "sk-oai-cccccccccccc3333"
GEMINI_KEY = "AIzaSyFake-check-dddddddddddddd4"
ECHO_KEY = "sk-echo-eeeeeeeeeeee5555"
ENV = {"GOOD_KEY": GOOD_KEY, "BAD_KEY": BAD_KEY, "OAI_KEY": OAI_KEY, "GEMINI_KEY": GEMINI_KEY, "ECHO_KEY": ECHO_KEY}

OFFLINE = """
providers:
  zai:
    protocol: anthropic
    base_url: http://127.0.0.1:9
    credentials: [{label: main, key: "${GOOD_KEY}"}]
    models: [glm-4.5-air, glm-4.6]
  anthropic:
    protocol: anthropic
    base_url: http://127.0.0.1:9
    auth: passthrough
routes:
  - {match: "claude-*", provider: anthropic}
aliases:
  fast: glm-4.5-air
  quick: fast
  lost: nothing-serves-this
  chained: lost
profiles:
  glm:
    slots: {opus: glm-4.6, sonnet: glm-4.6, haiku: glm-4.5-air}
    providers: [zai]
  mixed:
    slots: {opus: claude-opus-4-1, haiku: unrouted-model}
    model: glm-4.6
    providers: [zai]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "routes.yaml"
    path.write_text(text)
    return path


def run(path: Path, offline: bool = False, as_json: bool = False) -> tuple[int, str]:
    out = io.StringIO()
    return check_command.run(path, offline, as_json, ENV, out), out.getvalue()


def test_aliases_and_slots_that_route_nowhere_or_outside_their_profile(tmp_path: Path) -> None:
    cfg = config.load(write(tmp_path, OFFLINE), ENV)
    assert checks.problems(cfg) == [
        "aliases.lost: 'lost' (→ 'nothing-serves-this') matches no route in routes.yaml and there is no default; "
        "add a route or a provider's models entry for it, or a default",
        "aliases.chained: 'chained' (→ 'nothing-serves-this') matches no route in routes.yaml and there is no "
        "default; add a route or a provider's models entry for it, or a default",
        "profiles.mixed.slots.opus: 'claude-opus-4-1' routes to provider 'anthropic' (routes[0]), which is not in "
        "profiles.mixed.providers (zai); add it there or pick a model one of them serves",
        "profiles.mixed.slots.haiku: 'unrouted-model' matches no route in routes.yaml and there is no default; "
        "add a route or a provider's models entry for it, or a default",
    ]


def test_a_default_routes_every_name(tmp_path: Path) -> None:
    text = OFFLINE.replace("profiles:", "default: {provider: anthropic}\nprofiles:", 1)
    cfg = config.load(write(tmp_path, text), ENV)
    assert [p.split(":")[0] for p in checks.problems(cfg)] == ["profiles.mixed.slots.opus", "profiles.mixed.slots.haiku"]


def test_offline_exit_codes(tmp_path: Path) -> None:
    path = write(tmp_path, OFFLINE)
    status, out = run(path, offline=True)
    assert status == 1
    assert out.splitlines()[0].startswith(f"{path}: aliases.lost: ")
    assert out.splitlines()[4:] == ["", "--offline: no provider was probed (zai, anthropic)"]  # no probe table
    good = OFFLINE.split("  lost:")[0] + "profiles: {}\n"
    assert run(write(tmp_path, good), offline=True) == (
        0, f"{path}: valid\n\n--offline: no provider was probed (zai, anthropic)\n")


def test_a_file_that_does_not_load_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOOD_KEY", raising=False)
    path = write(tmp_path, OFFLINE)
    assert cli.main(["check", "--offline", "--config", str(path)]) == 2
    assert "environment variable GOOD_KEY is not set" in capsys.readouterr().err


def test_json_offline(tmp_path: Path) -> None:
    status, out = run(write(tmp_path, OFFLINE), offline=True, as_json=True)
    document = json.loads(out)
    assert status == 1 and document["ok"] is False and document["probes"] is None
    assert (document["exit_status"], document["not_checked"]) == (1, None)
    assert len(document["problems"]) == 4
    assert document["summary"] == "--offline: no provider was probed (zai, anthropic)"


@pytest.fixture
def fake() -> Iterator[Upstream]:
    """One fake for every protocol, told apart by path: Anthropic's /v1/messages and
    /v1/models, OpenAI's /chat/completions and .../models, Responses' /responses, Gemini's
    /v1beta/models...; answers as each would, a 401 for BAD_KEY and an echo of ECHO_KEY
    in its 401."""

    def reply(request: Received) -> object:
        key = request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix("Bearer ")
        if key == BAD_KEY:
            return Reply(401, b'{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}')
        if key == ECHO_KEY:
            return openai_upstream.error_reply(401, f"Incorrect API key provided: {ECHO_KEY}", code="invalid_api_key")
        if request.path.startswith(("/v1beta/", "/v1/messages", "/v1/models")):
            return gemini_upstream.gemini_like(request)  # Anthropic's answers for /v1/messages and /v1/models
        if request.path.endswith("/chat/completions") and request.json()["model"] == "no-such-model":
            return openai_upstream.error_reply(404, "The model `no-such-model` does not exist", code="model_not_found")
        return responses_upstream.responses_like(request)

    with Upstream() as server:
        server.reply = reply  # type: ignore[assignment]
        yield server


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def live_routes(url: str) -> str:
    return f"""
providers:
  claude:
    protocol: anthropic
    base_url: {url}
    credentials:
      - {{label: good, key: "${{GOOD_KEY}}"}}
      - {{label: bad, key: "${{BAD_KEY}}"}}
    models: [claude-haiku-4-5, claude-opus-4-1]
  oai:
    protocol: openai-chat
    base_url: {url}
    credentials: [{{label: main, key: "${{OAI_KEY}}"}}]
  echo:
    protocol: openai-chat
    base_url: {url}
    credentials: [{{label: leaky, key: "${{ECHO_KEY}}"}}]
    models: [gpt-test]
  codex:
    protocol: openai-responses
    base_url: {url}
    credentials: [{{label: main, key: "${{OAI_KEY}}"}}]
    models: [gpt-5.3-codex]
  gemini:
    protocol: gemini
    base_url: {url}/v1beta
    credentials: [{{label: main, key: "${{GEMINI_KEY}}"}}]
    models: [gemini-2.5-flash]
  down:
    protocol: anthropic
    base_url: http://127.0.0.1:{closed_port()}
    credentials: [{{label: main, key: "${{GOOD_KEY}}"}}]
    models: [glm-4.5-air]
  anthropic:
    protocol: anthropic
    base_url: {url}
    auth: passthrough
routes:
  - {{match: "gpt-*", provider: oai, model: no-such-model}}
  - {{match: "claude-*", provider: anthropic, fallback: [{{provider: down, model: glm-4.6}}]}}
  - {{match: "sonnet", provider: anthropic}}
"""


def masked(results: list[probe.Result]) -> list[str]:
    """The table with every latency the same, so its widths do not depend on timing."""
    for result in results:
        if result.latency_ms is not None:
            result.latency_ms = 7
    return check_command.table(results)


def test_probes_table(tmp_path: Path, fake: Upstream) -> None:
    cfg = config.load(write(tmp_path, live_routes(fake.url)), ENV)
    results = asyncio.run(probe.probe_all(probe.targets(cfg)))
    down = cfg.providers["down"].base_url
    assert masked(results) == [
        "provider   credential        model             reachable  auth ok  latency  model found  listed  note",
        "claude     good              claude-haiku-4-5  yes        yes      7 ms     yes          3",
        "claude     bad               claude-haiku-4-5  yes        no       7 ms     -            -       HTTP 401: invalid x-api-key",
        "oai        main              no-such-model     yes        yes      7 ms     no           4       HTTP 404: The model `no-such-model` does not exist; not in its model list",
        "echo       leaky             gpt-test          yes        no       7 ms     -            -       HTTP 401: Incorrect API key provided: leaky…5555",
        "codex      main              gpt-5.3-codex     yes        yes      7 ms     yes          4",
        "gemini     main              gemini-2.5-flash  yes        yes      7 ms     yes          3",
        f"down       main              glm-4.5-air       no         -        -        -            -       no answer from {down} (ConnectError: All connection attempts failed)",
        "anthropic  (client's token)  -                 yes        -        7 ms     -            -       reachable (HTTP 401); your own login is used, not checked",
    ]  # fmt: skip
    assert [r.failed for r in results] == [False, True, True, True, False, False, True, False]
    assert all(r.checked for r in results)


def test_probes_send_what_the_gateway_would(tmp_path: Path, fake: Upstream) -> None:
    cfg = config.load(write(tmp_path, live_routes(fake.url)), ENV)
    asyncio.run(probe.probe_all(probe.targets(cfg)))
    by_path = {r.path: r for r in fake.received if r.method == "POST"}
    assert by_path["/v1/messages"].json()["max_tokens"] == 1
    chat = next(r for r in fake.received if r.path == "/chat/completions" and r.json()["model"] == "no-such-model")
    assert chat.headers["authorization"] == f"Bearer {OAI_KEY}" and chat.json()["max_tokens"] == 1
    gemini = by_path["/v1beta/models/gemini-2.5-flash:generateContent"]
    assert gemini.headers["x-goog-api-key"] == GEMINI_KEY
    assert gemini.json()["generationConfig"]["maxOutputTokens"] == 1
    # Each model list once per credential, with the credential as the gateway sends it;
    # the passthrough provider's without any credential, and no one-token request.
    lists = [(r.path, auth_of(r) or "") for r in fake.received if r.method == "GET"]
    assert sorted(lists) == sorted([
        ("/v1/models?limit=1000", f"x-api-key: {GOOD_KEY}"), ("/v1/models?limit=1000", f"x-api-key: {BAD_KEY}"),
        ("/models", f"authorization: Bearer {OAI_KEY}"), ("/models", f"authorization: Bearer {ECHO_KEY}"),
        ("/models", f"authorization: Bearer {OAI_KEY}"), ("/v1beta/models?pageSize=1000", f"x-goog-api-key: {GEMINI_KEY}"),
        ("/v1/models?limit=1000", ""),
    ])  # fmt: skip
    assert all(r.headers["anthropic-version"] == "2023-06-01" for r in fake.received if r.path.startswith("/v1/models"))
    # One-token requests: every credential's, but the passthrough's and the unreachable one's.
    assert len([r for r in fake.received if r.method == "POST"]) == 6


def auth_of(request: Received) -> str | None:
    """The credential header a request carried, as `name: value`; None without one."""
    found = [f"{n}: {request.headers[n]}" for n in ("x-api-key", "authorization", "x-goog-api-key") if n in request.headers]
    assert len(found) <= 1, found
    return found[0] if found else None


def test_a_gemini_invalid_key_is_an_auth_failure(tmp_path: Path, fake: Upstream) -> None:
    fake.gate = lambda request: gemini_upstream.bad_key() if request.path.startswith("/v1beta/") else None
    cfg = config.load(write(tmp_path, live_routes(fake.url)), ENV)
    [result] = asyncio.run(probe.probe_all([t for t in probe.targets(cfg) if t.provider.name == "gemini"]))
    assert (result.reachable, result.auth_ok, result.model_found, result.failed) == (True, False, None, True)
    assert result.note.startswith("HTTP 401: ") and "API key not valid" in result.note


def test_the_command_never_prints_a_key(tmp_path: Path, fake: Upstream) -> None:
    path = write(tmp_path, live_routes(fake.url))
    for as_json in (False, True):
        status, out = run(path, as_json=as_json)
        assert status == 1
        assert not [key for key in ENV.values() if key in out]
        assert "leaky…5555" in out
    text = run(path)[1]
    assert re.search(r"^claude +good +claude-haiku-4-5 +yes +yes +\d+ ms +yes +3$", text, re.MULTILINE)
    assert text.endswith("\n\n7 of 7 providers checked; failed: claude, oai, echo, down\n")
    document = json.loads(run(path, as_json=True)[1])
    assert document["ok"] is False and document["problems"] == []
    assert document["probes"][0] == {
        "provider": "claude", "credential": "good", "model": "claude-haiku-4-5", "reachable": True,
        "auth_ok": True, "model_found": True, "listed": 3, "latency_ms": document["probes"][0]["latency_ms"],
        "note": "", "failed": False, "checked": True,
    }
    assert (document["exit_status"], document["not_checked"]) == (1, [])
    assert document["summary"] == "7 of 7 providers checked; failed: claude, oai, echo, down"


def test_all_good_exits_0(tmp_path: Path, fake: Upstream) -> None:
    routes = f"""
providers:
  claude:
    protocol: anthropic
    base_url: {fake.url}
    credentials: [{{label: good, key: "${{GOOD_KEY}}"}}]
    models: [claude-haiku-4-5]
"""
    status, out = run(write(tmp_path, routes))
    assert status == 0 and out.startswith(f"{tmp_path / 'routes.yaml'}: valid\n\nprovider ")
    assert out.endswith("\n\n1 of 1 providers checked; all passed\n")

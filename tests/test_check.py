"""modelmux check, the command: the cross-references loading leaves out (aliases,
profile slots), the exit codes (3 when a provider could not be checked at all), the
summary that names what was not checked, and output that never holds a key."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from check_upstream import (  # noqa: F401 (fake: a fixture)
    ECHO_KEY, ENV, auth_of, closed_port, codex_login, fake, glob_only, key, lines, lists_gate, live_routes,
    passthrough_routes, run, unprobeable_routes, write,
)
import openai_upstream
from modelmux.cli import main as cli
from modelmux.config import checks, loader, model_facts
from modelmux.config.model_facts import listed
from upstream import Upstream

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
    subagent: claude-haiku-4-5
    providers: [zai]
"""


def test_aliases_and_slots_that_route_nowhere_or_outside_their_profile(tmp_path: Path) -> None:
    cfg = loader.load(write(tmp_path, OFFLINE), ENV)
    assert checks.problems(cfg) == [
        "aliases.lost: 'lost' (→ 'nothing-serves-this') matches no route in routes.yaml and there is no default; "
        "add a route or a provider's models entry for it, or a default",
        "aliases.chained: 'chained' (→ 'nothing-serves-this') matches no route in routes.yaml and there is no "
        "default; add a route or a provider's models entry for it, or a default",
        "profiles.mixed.slots.opus: 'claude-opus-4-1' routes to provider 'anthropic' (routes[0]), which is not in "
        "profiles.mixed.providers (zai); add it there or pick a model one of them serves",
        "profiles.mixed.slots.haiku: 'unrouted-model' matches no route in routes.yaml and there is no default; "
        "add a route or a provider's models entry for it, or a default",
        "profiles.mixed.subagent: 'claude-haiku-4-5' routes to provider 'anthropic' (routes[0]), which is not in "
        "profiles.mixed.providers (zai); add it there or pick a model one of them serves",
    ]


def test_a_default_routes_every_name(tmp_path: Path) -> None:
    text = OFFLINE.replace("profiles:", "default: {provider: anthropic}\nprofiles:", 1)
    cfg = loader.load(write(tmp_path, text), ENV)
    assert [p.split(":")[0] for p in checks.problems(cfg)] == [
        "profiles.mixed.slots.opus", "profiles.mixed.slots.haiku", "profiles.mixed.subagent"]


def test_offline_exit_codes(tmp_path: Path) -> None:
    path = write(tmp_path, OFFLINE)
    status, out = run(path, offline=True)
    assert status == 1
    assert out.splitlines()[0].startswith(f"{path}: aliases.lost: ")
    assert out.splitlines()[5:] == ["", "--offline: no provider was probed (zai, anthropic)"]  # no probe table
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
    assert len(document["problems"]) == 5
    assert document["summary"] == "--offline: no provider was probed (zai, anthropic)"


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


def test_a_passthrough_provider_that_does_not_answer_fails(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    status, out = run(write(tmp_path, passthrough_routes(url)))
    assert (status, lines(out)[2:]) == (1, [
        "provider | credential | model | reachable | auth ok | latency | model found | listed | note",
        f"anthropic | (client's token) | - | no | - | - | - | - | no answer from {url} "
        "(ConnectError: All connection attempts failed)",
        "",
        "1 of 1 providers checked; failed: anthropic",
    ])  # fmt: skip


def test_a_passthrough_provider_that_answers_401_is_reachable(tmp_path: Path, fake: Upstream) -> None:
    status, out = run(write(tmp_path, passthrough_routes(fake.url)))
    assert (status, lines(out)[2:]) == (0, [
        "provider | credential | model | reachable | auth ok | latency | model found | listed | note",
        "anthropic | (client's token) | - | yes | - | 7 ms | - | - | reachable (HTTP 401); "
        "your own login is used, not checked",
        "",
        "1 of 1 providers checked; all passed",
    ])  # fmt: skip
    [asked] = fake.received
    assert (asked.method, asked.path, auth_of(asked), asked.headers["anthropic-version"]) == (
        "GET", "/v1/models?limit=1000", None, "2023-06-01")


def test_a_provider_that_cannot_be_checked_is_named_and_exits_3(tmp_path: Path, fake: Upstream,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    fake.gate = lists_gate
    path = write(tmp_path, unprobeable_routes(fake.url, codex_login(tmp_path, f"{fake.url}/backend")))
    status, out = run(path)
    not_checked = [
        "not checked: local, main: no model list at GET /local/v1/models (HTTP 404: Unknown request URL: GET "
        "/local/v1/models), and routes.yaml names no model; add a model to providers.local.models to probe with",
        "not checked: router, main: its model list answers without a key too, so it shows nothing of the key; "
        "add a model to providers.router.models to probe with",
        "not checked: sub, login: a subscription login has no model list to ask, and routes.yaml names no model "
        "for it; add one to providers.sub.models",
    ]
    assert (status, lines(out)[2:]) == (3, [
        "provider | credential | model | reachable | auth ok | latency | model found | listed | note",
        "claude | main | - | yes | yes | 7 ms | - | 3 | e.g. claude-opus-4-1 routes here",
        "local | main | - | yes | - | 7 ms | - | - | " + not_checked[0].split(": ", 2)[2],
        "router | main | - | yes | - | 7 ms | - | 4 | " + not_checked[1].split(": ", 2)[2],
        "sub | login | - | - | - | - | - | - | " + not_checked[2].split(": ", 2)[2],
        "",
        "1 of 4 providers checked; NOT CHECKED: local, router, sub",
        *not_checked,
    ])  # fmt: skip
    assert not [r for r in fake.received if r.path.startswith("/backend")]  # the login was not used
    document = json.loads(run(path, as_json=True)[1])
    assert (document["ok"], document["exit_status"]) == (False, 3)
    assert document["not_checked"] == [
        {"provider": line.split(", ")[0].removeprefix("not checked: "), "credential": line.split(", ")[1].split(":")[0],
         "reason": line.split(": ", 2)[2]} for line in not_checked
    ]  # fmt: skip
    assert document["summary"] == "1 of 4 providers checked; NOT CHECKED: local, router, sub"
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["check", "--config", str(path)]) == 3


def test_a_failure_outranks_what_was_not_checked(tmp_path: Path, fake: Upstream) -> None:
    fake.gate = lists_gate
    text = unprobeable_routes(fake.url, codex_login(tmp_path, f"{fake.url}/backend")).replace("GOOD_KEY", "BAD_KEY")
    status, out = run(write(tmp_path, text))
    assert status == 1
    assert "\n1 of 4 providers checked; failed: claude; NOT CHECKED: local, router, sub\nnot checked: local, " in out


def test_a_model_list_that_echoes_the_key_shows_no_key(tmp_path: Path, fake: Upstream) -> None:
    text = glob_only(fake.url, [("claude", "anthropic", "", key("GOOD_KEY"), "claude-*"),
                                ("leaky", "openai-chat", "/leaky/v1", key("ECHO_KEY"), "leak-*")])
    path = write(tmp_path, text)
    status, out = run(path)
    assert status == 1
    assert lines(out)[4] == "leaky | main | - | yes | no | 7 ms | - | - | HTTP 401: Incorrect API key provided: main…5555"
    [asked] = [r for r in fake.received if r.path == "/leaky/v1/models"]
    assert asked.headers["authorization"] == f"Bearer {ECHO_KEY}"  # it was sent, and echoed back
    status, out = run(path, as_json=True)
    assert status == 1 and ECHO_KEY not in out
    [leaky] = [p for p in json.loads(out)["probes"] if p["provider"] == "leaky"]
    assert leaky["note"] == "HTTP 401: Incorrect API key provided: main…5555"


def test_what_the_model_lists_report_is_kept_for_the_launcher(tmp_path: Path, fake: Upstream) -> None:
    """A check is often run before the first `modelmux run`: it leaves what the lists
    reported where the gateway keeps it, and no key there."""
    listing = {"data": [{"id": "gpt-test", "context_length": 128000, "top_provider": {"max_completion_tokens": 16384}}]}
    fake.gate = lambda r: openai_upstream.json_reply(listing) if r.path == "/router/v1/models" else None
    routes = f"""
providers:
  router:
    protocol: openai-chat
    base_url: {fake.url}/router/v1
    credentials: [{{label: main, key: "${{OAI_KEY}}"}}]
    models: [gpt-test]
"""
    path = write(tmp_path, routes)
    assert run(path)[0] == 0
    cache = model_facts.discovered_path(path)
    assert model_facts.load_discovered(cache) == {"router": {"gpt-test": listed(context_window=128000,
                                                                                max_output=16384)}}
    assert ENV["OAI_KEY"] not in cache.read_text()

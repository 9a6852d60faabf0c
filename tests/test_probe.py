"""modelmux check's probes against local fakes of each protocol: what each provider and
credential is sent (its model list, one-token requests built as the gateway builds
them), with which credential header, and what the answers show."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import gemini_upstream
import openai_upstream
from check_upstream import (  # noqa: F401 (fake: a fixture)
    ENV, GEMINI_KEY, GOOD_KEY, LOGIN_TOKEN, OAI_KEY, BAD_KEY, ECHO_KEY, auth_of, codex_login, fake, glob_routes,
    lines, live_routes, masked, run, unprobeable_routes, write,
)
from modelmux.cli import probe
from modelmux.config import loader
from modelmux.config.types import ModelPattern, Route
from upstream import Upstream

def test_probes_table(tmp_path: Path, fake: Upstream) -> None:
    cfg = loader.load(write(tmp_path, live_routes(fake.url)), ENV)
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
    cfg = loader.load(write(tmp_path, live_routes(fake.url)), ENV)
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


def test_a_gemini_invalid_key_is_an_auth_failure(tmp_path: Path, fake: Upstream) -> None:
    fake.gate = lambda request: gemini_upstream.bad_key() if request.path.startswith("/v1beta/") else None
    cfg = loader.load(write(tmp_path, live_routes(fake.url)), ENV)
    [result] = asyncio.run(probe.probe_all([t for t in probe.targets(cfg) if t.provider.name == "gemini"]))
    assert (result.reachable, result.auth_ok, result.model_found, result.failed) == (True, False, None, True)
    assert result.note.startswith("HTTP 401: ") and "API key not valid" in result.note


def test_glob_routes_only_probe_each_model_list(tmp_path: Path, fake: Upstream) -> None:
    path = write(tmp_path, glob_routes(fake.url))
    status, out = run(path)
    assert (status, lines(out)) == (0, [
        f"{path}: valid",
        "",
        "provider | credential | model | reachable | auth ok | latency | model found | listed | note",
        "claude | main | - | yes | yes | 7 ms | - | 3 | e.g. claude-opus-4-1 routes here",
        "codex | main | - | yes | yes | 7 ms | - | 4 | e.g. gpt-5.3-codex routes here",
        "oai | main | - | yes | yes | 7 ms | - | 4 | e.g. gpt-test routes here",
        "gemini | main | - | yes | yes | 7 ms | - | 3 | e.g. gemini-2.5-flash routes here",
        "",
        "4 of 4 providers checked; all passed",
    ])  # fmt: skip
    # Each list with the credential as the gateway sends it, then once without any, to
    # see that the list does ask for a key (it does: 401 or 403); no one-token request.
    assert sorted((r.method, r.path, auth_of(r) or "") for r in fake.received) == sorted([
        ("GET", "/v1/models?limit=1000", f"x-api-key: {GOOD_KEY}"), ("GET", "/v1/models?limit=1000", ""),
        ("GET", "/oai/v1/models", f"authorization: Bearer {OAI_KEY}"), ("GET", "/oai/v1/models", ""),
        ("GET", "/codex/v1/models", f"authorization: Bearer {OAI_KEY}"), ("GET", "/codex/v1/models", ""),
        ("GET", "/v1beta/models?pageSize=1000", f"x-goog-api-key: {GEMINI_KEY}"),
        ("GET", "/v1beta/models?pageSize=1000", ""),
    ])  # fmt: skip


def test_a_bad_key_on_the_model_list_is_an_auth_failure(tmp_path: Path, fake: Upstream) -> None:
    fake.gate = lambda request: gemini_upstream.bad_key() if request.path.startswith("/v1beta/") else None
    path = write(tmp_path, glob_routes(fake.url, claude_key="BAD_KEY"))
    status, out = run(path)
    assert status == 1
    assert lines(out)[2:4] == [
        "provider | credential | model | reachable | auth ok | latency | model found | listed | note",
        "claude | main | - | yes | no | 7 ms | - | - | HTTP 401: invalid x-api-key",
    ]  # fmt: skip
    assert lines(out)[6] == ("gemini | main | - | yes | no | 7 ms | - | - | "
                             "HTTP 401: API key not valid. Please pass a valid API key. (INVALID_ARGUMENT)")
    assert out.endswith("\n\n4 of 4 providers checked; failed: claude, gemini\n")
    assert not [r for r in fake.received if r.method == "POST"]


def test_a_subscription_login_with_a_model_gets_the_one_token_request(tmp_path: Path, fake: Upstream) -> None:
    login = codex_login(tmp_path, f"{fake.url}/backend")
    path = write(tmp_path, unprobeable_routes(fake.url, login, "\n    models: [gpt-5.3-codex]"))
    status, out = run(path)
    assert lines(out)[6] == "sub | login | gpt-5.3-codex | yes | yes | 7 ms | yes | -"
    [sent] = [r for r in fake.received if r.path.startswith(("/backend", "/unused"))]
    assert (sent.method, sent.path, sent.headers["authorization"], sent.headers["chatgpt-account-id"]) == (
        "POST", "/backend/responses", f"Bearer {LOGIN_TOKEN}", "acct-1")
    assert LOGIN_TOKEN not in out
    assert status == 0 and out.endswith("\n4 of 4 providers checked; all passed\n")  # lists answer 401 without a key


def test_a_keyless_provider_is_asked_without_a_key(tmp_path: Path, fake: Upstream) -> None:
    listed = openai_upstream.json_reply({"object": "list", "data": [{"id": "llama3.2"}, {"id": "qwen3"}]})
    fake.gate = lambda request: listed if request.path == "/ollama/v1/models" else None
    cfg = loader.load(write(tmp_path, glob_routes(fake.url)), ENV)
    ollama = dataclasses.replace(cfg.providers["oai"], name="ollama", base_url=f"{fake.url}/ollama/v1", auth=None,
                                 credentials=(), keyless=True)
    locked = dataclasses.replace(ollama, name="locked", base_url=f"{fake.url}/locked/v1")
    routes = (Route(ModelPattern("any", "*"), "ollama", None, "requested", "default"),)
    results = asyncio.run(probe.probe_all([
        probe.Target(ollama, None, None, routes), probe.Target(ollama, None, "qwen3", routes),
        probe.Target(locked, None, None, routes),
    ]))  # fmt: skip
    assert masked(results) == [
        "provider  credential  model  reachable  auth ok  latency  model found  listed  note",
        "ollama    (no key)    -      yes        -        7 ms     -            2       e.g. llama3.2 routes here",
        "ollama    (no key)    qwen3  yes        -        7 ms     yes          2",
        "locked    (no key)    -      yes        -        7 ms     -            -       HTTP 401: You didn't provide an API key. "
        "You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer "
        "YOUR_KEY).; it asks for a key: give providers.locked auth and credentials",
    ]  # fmt: skip
    assert [(r.failed, r.checked) for r in results] == [(False, True), (False, True), (True, True)]
    assert sorted((r.method, r.path, auth_of(r) or "") for r in fake.received) == [
        ("GET", "/locked/v1/models", ""), ("GET", "/ollama/v1/models", ""), ("GET", "/ollama/v1/models", ""),
        ("POST", "/ollama/v1/chat/completions", ""),
    ]  # fmt: skip

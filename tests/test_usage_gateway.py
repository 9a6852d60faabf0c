"""Usage statistics end to end: the real gateway in front of a fake Anthropic upstream,
requests from the anthropic SDK, then exact numbers in GET /modelmux/usage, in the
usage file, after a restart, and from `modelmux usage`."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from gateway import Gateway
from upstream import Behaviour, Received, Reply, Upstream, anthropic_like, message

from modelmux import usage
from modelmux.cli import main as cli
from modelmux.headers import KEY_HEADER

KEYS = {"main": "key-zai-main-7a1c", "f": "key-flaky-f-2b3d", "solo": "key-backup-solo-9e4f"}
GATEWAY_KEY = "mm-usage-gateway-key-0c5e"
PROMPT = "a prompt that must stay out of the usage file"


def routes(upstream: Upstream, api_key: str | None = None) -> str:
    server = f"server: {{api_key: {api_key}}}\n" if api_key else ""
    return server + f"""
providers:
  zai: {{protocol: anthropic, base_url: "{upstream.url}", credentials: [{{label: main, key: {KEYS["main"]}}}]}}
  flaky: {{protocol: anthropic, base_url: "{upstream.url}", credentials: [{{label: f, key: {KEYS["f"]}}}]}}
  backup: {{protocol: anthropic, base_url: "{upstream.url}", credentials: [{{label: solo, key: {KEYS["solo"]}}}]}}
routes:
  - {{match: "fall-*", provider: flaky, fallback: [{{provider: backup, model: backup-model}}]}}
default: {{provider: zai}}
"""


def scripted(request: Received) -> Behaviour:
    """Cache counts for cached-model, a 400 for bad-model, 529 for credential f; else Anthropic-like."""
    model = request.json().get("model")
    if request.headers.get("x-api-key") == KEYS["f"]:
        return error(529, "overloaded_error", "Overloaded")
    if model == "bad-model":
        return error(400, "invalid_request_error", "max_tokens: too large")
    if model == "cached-model":
        body = message(model)
        body["usage"] = {"input_tokens": 20, "cache_read_input_tokens": 3000, "cache_creation_input_tokens": 5,
                         "output_tokens": 9}
        return Reply(body=json.dumps(body).encode())
    return anthropic_like(request)


def error(status: int, kind: str, text: str) -> Reply:
    return Reply(status, json.dumps({"type": "error", "error": {"type": kind, "message": text}}).encode())


def send_traffic(gateway: Gateway, **headers: str) -> None:
    client = anthropic.Anthropic(base_url=gateway.url, api_key="unused", max_retries=0, default_headers=headers)
    ask = {"max_tokens": 16, "messages": [{"role": "user", "content": PROMPT}]}
    client.messages.create(model="glm-4.6", **ask)
    with client.messages.stream(model="glm-4.6", **ask) as stream:
        assert stream.get_final_text() == "Hello from the fake upstream."
    client.messages.create(model="cached-model", **ask)
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model="bad-model", **ask)
    assert client.messages.create(model="fall-x", **ask).model == "fall-x"  # flaky's 529, then backup's answer
    client.models.list()  # answered by the gateway itself: not counted


def report(gateway: Gateway, query: str = "days=1&by=all", **headers: str) -> dict[str, Any]:
    response = httpx.get(f"{gateway.url}/modelmux/usage?{query}", headers=headers, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def counts(row: dict[str, Any]) -> tuple:
    return tuple(row[name] for name in usage.COUNTERS)


@pytest.fixture
def upstream() -> Any:
    with Upstream() as server:
        server.reply = scripted
        yield server


def test_counts_in_the_endpoint_and_the_file_survive_a_restart(upstream: Upstream, tmp_path: Path) -> None:
    with Gateway(tmp_path, routes(upstream)) as gateway:
        send_traffic(gateway)
        first = report(gateway)
        by_provider = report(gateway, "days=7&by=provider")
    rows = first["rows"]
    assert [(r["provider"], r["credential"], r["model"], *counts(r)) for r in rows] == [
        # provider, credential, model, requests, errors, input, cached, cache write, output
        ("zai", "main", "glm-4.6", 2, 0, 24, 0, 0, 14),
        ("backup", "solo", "backup-model", 1, 0, 12, 0, 0, 7),
        ("zai", "main", "bad-model", 1, 1, 0, 0, 0, 0),
        ("zai", "main", "cached-model", 1, 0, 20, 3000, 5, 9),
    ]
    assert counts(first["total"]) == (5, 1, 56, 3000, 5, 30)
    assert (rows[2]["ttft_p50_ms"], rows[2]["ttft_p95_ms"]) == (None, None)  # the 400 had no content
    for row in (rows[0], rows[1], rows[3], first["total"]):
        assert 0 < row["ttft_p50_ms"] <= row["ttft_p95_ms"]
    assert [(r["provider"], r["requests"], r["errors"]) for r in by_provider["rows"]] == [("zai", 4, 1), ("backup", 1, 0)]

    file = gateway.state_file(".usage.jsonl")
    assert first["file"] == str(file)
    records = [usage.Record.parse(line) for line in file.read_text().splitlines()]
    assert [
        (r.provider, r.credential, r.model, r.requested_model, r.status, r.error_type, r.input_tokens,
         r.cached_tokens, r.cache_write_tokens, r.output_tokens, r.attempts, r.ttft_ms is None)
        for r in records
    ] == [
        ("zai", "main", "glm-4.6", "glm-4.6", 200, None, 12, 0, 0, 7, 1, False),
        ("zai", "main", "glm-4.6", "glm-4.6", 200, None, 12, 0, 0, 7, 1, False),
        ("zai", "main", "cached-model", "cached-model", 200, None, 20, 3000, 5, 9, 1, False),
        ("zai", "main", "bad-model", "bad-model", 400, "invalid_request_error", 0, 0, 0, 0, 1, True),
        ("backup", "solo", "backup-model", "fall-x", 200, None, 12, 0, 0, 7, 2, False),
    ]  # fmt: skip
    assert all(r.total_ms is not None and r.total_ms >= (r.ttft_ms or 0) for r in records)
    text = file.read_text()
    assert not [key for key in KEYS.values() if key in text]
    assert PROMPT not in text and "Hello from the fake upstream" not in text  # no bodies

    with Gateway(tmp_path, routes(upstream)) as restarted:
        assert report(restarted) == first
        send_traffic(restarted)
        again = report(restarted)
    assert counts(again["total"]) == (10, 2, 112, 6000, 10, 60)
    assert len(file.read_text().splitlines()) == 10


def test_modelmux_usage_asks_the_running_gateway_with_its_key(
    upstream: Upstream, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Gateway(tmp_path, routes(upstream, api_key=GATEWAY_KEY)) as gateway:
        refused = httpx.get(f"{gateway.url}/modelmux/usage", timeout=5)
        assert (refused.status_code, refused.json()["error"]["type"]) == (401, "authentication_error")
        send_traffic(gateway, **{KEY_HEADER: GATEWAY_KEY})
        expected = report(gateway, "days=7&by=credential", **{KEY_HEADER: GATEWAY_KEY})
        code = cli.main(["usage", "--days", "7", "--by", "credential", "--config", str(gateway.config),
                         "--port", str(gateway.port)])  # fmt: skip
        out, err = capsys.readouterr()
        assert (code, err) == (0, "")
        assert out.splitlines() == [f"usage from the gateway on 127.0.0.1:{gateway.port}", "", *usage.table(expected)]
        assert [(r["provider"], r["credential"], r["requests"]) for r in expected["rows"]] == [
            ("zai", "main", 4), ("backup", "solo", 1)
        ]  # fmt: skip
        cli.main(["usage", "--json", "--config", str(gateway.config), "--port", str(gateway.port)])
        both = json.loads(capsys.readouterr().out)
        assert [(d["days"], d["by"], d["total"]["requests"]) for d in both] == [(1, "all", 5), (7, "all", 5)]
        assert GATEWAY_KEY not in out


@pytest.mark.claude_code
def test_claude_code_through_the_gateway_is_counted_request_for_request(tmp_path: Path) -> None:
    """Every /v1/messages the upstream answered for Claude Code is one request in the
    report, with the fake's token counts; its warm-up and local answers are not."""
    from test_claude_code import PROFILE, UPSTREAM_MODELS, VENDOR_KEY, anthropic_vendor, claude_binary, claude_code
    from test_claude_code import messages_requests, routes_yaml

    binary = claude_binary()
    with Upstream() as upstream:
        gateway = Gateway(tmp_path, "", env={"FAKE_VENDOR_KEY": VENDOR_KEY})
        gateway.config.write_text(routes_yaml(gateway.port, anthropic_vendor(upstream.url)))
        code = claude_code(binary, gateway, PROFILE, {"FAKE_VENDOR_KEY": VENDOR_KEY}, tmp_path)
        with gateway:
            result = code.run("Say hello")
            assert result.returncode == 0, result.stderr[-2000:]
            document = report(gateway, "days=1&by=model")
        answered = messages_requests(upstream)
    per_model = Counter(json.loads(r.body)["model"] for r in answered)
    assert set(per_model) <= set(UPSTREAM_MODELS.values())
    assert {(row["provider"], row["model"]): row["requests"] for row in document["rows"]} == {
        ("fake", model): n for model, n in per_model.items()
    }
    # The fake answers every request with 12 tokens in and 7 out.
    assert counts(document["total"]) == (len(answered), 0, 12 * len(answered), 0, 0, 7 * len(answered))
    assert len(gateway.state_file(".usage.jsonl").read_text().splitlines()) == len(answered)

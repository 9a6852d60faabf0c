"""The per-model output cap through the real gateway, on both send paths and for every
protocol: Claude Code asks for 32000 output tokens, and the upstream of a model whose
routes.yaml `max_output` is smaller receives that instead (in its own field), with a
thinking budget kept below it; the smaller of max_output and max_tokens_limit wins."""

from __future__ import annotations

import re
from typing import Any

import pytest
from both_paths import ENV, MODELS, PATHS, PROTOCOLS, key_of, normally, post
from both_paths import routes_yaml as both_paths_routes
from openai_upstream import gateway_fixtures, server  # noqa: F401 (server: a fixture)

CAP = 1000
LIMITED = 500  # chat-pool's max_tokens_limit, below its model's max_output


def routes_yaml(url: str) -> str:
    """both_paths' providers, each model with max_output: CAP; chat-pool also with a
    max_tokens_limit below it."""
    def with_facts(found: re.Match[str]) -> str:
        short, path = found.group(1), found.group(2)
        limit = f"    max_tokens_limit: {LIMITED}\n" if (short, path) == ("chat", "pool") else ""
        return f"{found.group(0)}    models: [{{name: {MODELS[short]}, max_output: {CAP}}}]\n{limit}"

    return re.sub(r"  (\w+)-(solo|pool):\n(?:    .*\n)+?    credentials: .*\n", with_facts, both_paths_routes(url))


gateway, fresh = gateway_fixtures("output-cap", routes_yaml, ENV, normally)


def sent(server) -> list[dict[str, Any]]:
    return [request.json() for request in server.received if request.method == "POST"]


def output_field(short: str, body: dict[str, Any]) -> int:
    if short == "gem":
        return body["generationConfig"]["maxOutputTokens"]
    return body["max_output_tokens" if short == "resp" else "max_tokens"]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("short", list(PROTOCOLS))
def test_the_upstream_receives_at_most_the_models_maximum(gateway, server, short, path, stream):
    response = post(gateway, f"{short}-{path}", stream, max_tokens=32000)
    assert response.status_code == 200, response.text
    cap = LIMITED if (short, path) == ("chat", "pool") else CAP
    assert [output_field(short, body) for body in sent(server)] == [cap]
    assert key_of(server.received[-1]).startswith(short)


@pytest.mark.parametrize("path", PATHS)
def test_an_anthropic_compatible_vendor_gets_a_thinking_budget_below_the_cap(gateway, server, path):
    response = post(gateway, f"vend-{path}", False, max_tokens=32000,
                    thinking={"type": "enabled", "budget_tokens": 31999})
    assert response.status_code == 200, response.text
    (body,) = sent(server)
    assert (body["max_tokens"], body["thinking"]["budget_tokens"]) == (CAP, CAP - 1)


@pytest.mark.parametrize("path", PATHS)
def test_a_request_within_the_cap_is_not_changed(gateway, server, path):
    assert post(gateway, f"vend-{path}", False, max_tokens=64).status_code == 200
    assert [body["max_tokens"] for body in sent(server)] == [64]

"""Profiles with a port get their own listener, added and removed as routes.yaml changes."""

from __future__ import annotations

import httpx

from gateway import free_port
from test_settings import rewrite, wait_for
from upstream import Upstream

ROUTES = """
providers:
  a: {{protocol: anthropic, base_url: "{a}", auth: passthrough}}
  b: {{protocol: anthropic, base_url: "{b}", auth: passthrough}}
routes:
  - {{match: "b-*", provider: b}}
profiles:
{profiles}
default: {{provider: a}}
"""


def answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def test_profile_ports_follow_the_config(start_gateway):
    first, second = free_port(), free_port()
    with Upstream() as a, Upstream() as b:
        gateway = start_gateway(ROUTES.format(a=a.url, b=b.url, profiles=f"  only-a: {{providers: [a], port: {first}}}"))
        assert answers(first)
        refused = httpx.post(f"http://127.0.0.1:{first}/v1/messages", json={"model": "b-1"})
        assert refused.status_code == 403 and b.received == []

        rewrite(gateway.config, ROUTES.format(a=a.url, b=b.url, profiles=f"  only-b: {{providers: [b], port: {second}}}"))
        wait_for(lambda: answers(second) and not answers(first))
        assert httpx.post(f"http://127.0.0.1:{second}/v1/messages", json={"model": "b-1"}).status_code == 200
        assert httpx.post(f"http://127.0.0.1:{second}/v1/messages", json={"model": "a-1"}).status_code == 403
        assert len(b.received) == 1 and a.received == []
        assert gateway.health()["listeners"] == [
            f"reverse:https://api.anthropic.com@127.0.0.1:{gateway.port}",
            f"reverse:https://api.anthropic.com@127.0.0.1:{second}",
        ]

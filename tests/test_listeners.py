"""Profiles with a port get their own listener, added and removed as routes.yaml changes."""

from __future__ import annotations

from pathlib import Path

import httpx

from gateway import Gateway, free_port
from openai_upstream import GREETING, openai_like
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


DESIGN_ROUTES = """
providers:
  anthropic: {{protocol: anthropic, base_url: "{dead}", auth: passthrough}}
  oai:
    protocol: openai-chat
    base_url: "{oai}/v1"
    credentials: [{{label: oai-main, key: "${{OAI_KEY}}"}}]
routes:
  - {{match: "gpt-*", provider: oai}}
default: {{provider: anthropic}}
"""


def test_the_design_command_serves_when_its_reverse_target_is_unreachable(tmp_path: Path) -> None:
    """`mitmdump -s addons/router.py --mode reverse:TARGET@HOST:PORT`, exactly as the
    script documents it, with no other option: mitmproxy's eager default would dial
    TARGET for every client connection and drop the client when it cannot. The addon
    makes it lazy, so with TARGET unreachable (offline, firewalled) /healthz and routed
    requests are answered, and a request for TARGET gets an Anthropic error naming it."""
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with Upstream() as oai:
        oai.reply = openai_like
        gateway = Gateway(tmp_path, DESIGN_ROUTES.format(dead=dead, oai=oai.url), {"OAI_KEY": "sk-oai-design-1"})
        gateway.mode = f"reverse:{dead}@127.0.0.1:{gateway.port}"
        with gateway:
            assert "connection_strategy" not in " ".join(gateway.command)
            assert gateway.health()["status"] == "ok"
            body = {"model": "gpt-test", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
            answer = httpx.post(f"{gateway.url}/v1/messages", json=body, timeout=10)
            assert answer.status_code == 200
            assert answer.json()["content"] == [{"type": "text", "text": GREETING, "citations": None}]
            assert [r.path for r in oai.received] == ["/v1/chat/completions"]
            refused = httpx.post(f"{gateway.url}/v1/messages", json={**body, "model": "claude-x"}, timeout=10)
            host = dead.removeprefix("http://")
            assert (refused.status_code, refused.json()["error"]["type"]) == (502, "api_error")
            assert refused.json()["error"]["message"].startswith(f"provider 'anthropic' (http://{host}) cannot be connected to: ")

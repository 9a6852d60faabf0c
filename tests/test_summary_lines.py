"""With modelmux_summary_lines (as `modelmux serve` runs the gateway, with flow_detail=0),
the log has one line per request, the summary mitmweb's comment column shows, without
a secret an upstream echoed; mitmdump's own flow lines are gone."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx

from gateway import Gateway
from upstream import Reply, Upstream

KEY = "k-summary-0123456789"
SERVE = ["--set", "flow_detail=0", "--set", "modelmux_summary_lines=true"]


def routes(upstream: Upstream) -> str:
    return (f"providers:\n  zai: {{protocol: anthropic, base_url: '{upstream.url}', credentials: [{{label: a, key: {KEY}}}]}}\n"
            "routes:\n  - {match: 'glm-*', provider: zai}\ndefault: null\n")


def lines_of(gateway: Gateway, count: int) -> list[str]:
    """The log's summary lines once `count` are there (they come after the answer)."""
    deadline = time.monotonic() + 10
    while True:
        found = [line for line in gateway.log.read_text().splitlines() if "glm-4.6 →" in line]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_a_line_per_request_says_what_modelmux_did_and_quotes_no_key(tmp_path: Path):
    """A JSON answer (the relay's), a stream (mitmproxy sends a single upstream's) and a
    refusal whose body quotes the key."""
    body = {"model": "glm-4.6", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    with Upstream() as upstream:
        with Gateway(tmp_path, routes(upstream), extra_args=SERVE) as gateway:
            assert httpx.post(f"{gateway.url}/v1/messages", json=body, timeout=10).status_code == 200
            streamed = httpx.post(f"{gateway.url}/v1/messages", json={**body, "stream": True}, timeout=10)
            assert streamed.status_code == 200 and b"message_stop" in streamed.content  # mitmproxy sends it
            echo = {"type": "error", "error": {"type": "authentication_error", "message": f"invalid x-api-key {KEY}"}}
            upstream.reply = lambda request: Reply(401, json.dumps(echo).encode())
            refused = httpx.post(f"{gateway.url}/v1/messages", json=body, timeout=10)
            assert refused.status_code == 401
            found = lines_of(gateway, 3)
            log = gateway.log.read_text()
    assert len(found) == 3, log
    assert "200 · glm-4.6 → zai/glm-4.6 · in 12 out 7 · " in found[0] and found[0].endswith(" ms · a [routes[0]]")
    assert re.search(r"200 · glm-4\.6 → zai/glm-4\.6 · in \d+ out \d+ · ttft \d+ ms · \d+ ms · a \[routes\[0\]\]$", found[1]), found[1]
    assert "401 authentication_error · glm-4.6 → zai/glm-4.6" in found[2], found[2]
    assert KEY not in log and "POST http" not in log  # no key; no mitmdump flow line

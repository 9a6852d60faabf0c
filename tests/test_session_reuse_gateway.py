"""A session's earlier turns, reused (repeated.py), go upstream as translated afresh,
through the real gateway on both send paths: mitmproxy's own (one key) and the failover
relay's (a pool). Each request of a growing session repeats the last one's turns, as
Claude Code's do; the gateway parses, translates and writes those once."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from both_paths import MODELS, PATHS, fresh, gateway, server  # noqa: F401 (fixtures)

from modelmux.config.types import Shape
from modelmux.translate.registry import PROTOCOLS as TRANSLATIONS

PROTOCOLS = {"chat": ("openai-chat", "messages"), "resp": ("openai-responses", "input"), "gem": ("gemini", "contents")}
LONG = " and then some more words" * 12  # long enough for Recent to keep the item


def session() -> list[dict[str, Any]]:
    """A session's messages: a question, two user messages in a row, a tool call and its result."""
    return [
        {"role": "user", "content": [{"type": "text", "text": "List the files." + LONG}]},
        {"role": "user", "content": [{"type": "text", "text": "Only the Python ones." + LONG}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Looking." + LONG},
                                          {"type": "tool_use", "id": "toolu_01", "name": "Bash",
                                           "input": {"command": "ls *.py"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01",
                                      "content": "a.py\nb.py" + LONG}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Two files." + LONG}]},
        {"role": "user", "content": [{"type": "text", "text": "Thanks." + LONG, "cache_control": {"type": "ephemeral"}}]},
    ]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("short", PROTOCOLS)
def test_each_turn_goes_upstream_as_translated_afresh(gateway, server, short, path):
    protocol, field = PROTOCOLS[short]
    messages = session()
    ends = [end for end in range(1, len(messages) + 1) if messages[end - 1]["role"] == "user"]
    for end in ends:
        body = {"model": f"{short}-{path}", "max_tokens": 64, "stream": False, "messages": messages[:end]}
        answer = httpx.post(f"{gateway.url}/v1/messages", json=body, timeout=15)
        assert answer.status_code == 200, answer.text
    translate = TRANSLATIONS[protocol].translation.request
    sent = [request.json()[field] for request in server.received]
    afresh = [translate(json.loads(json.dumps({**body, "messages": messages[:end]})), Shape(), MODELS[short], None)[field]
              for end in ends]
    assert sent == afresh

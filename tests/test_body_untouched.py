"""Nothing changes a client's parsed body in place: repeated.Recent hands the same
parsed items to every request that repeats their text (Claude Code repeats its tools,
system blocks and earlier turns), so a reader that wrote into one would change the
next request. Every reader of the body on the way upstream is run here on a copy and
the copy compared with the original; so is what translators build once for a
session's tools (repeated.section). Pure."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.token_accuracy import claude_code_request
from modelmux import routing
from modelmux.attempt import exchange
from modelmux.config import loader, model_facts
from modelmux.credentials.pools import session_of
from modelmux.translate import messages, validation
from modelmux.translate.openai_chat.request import to_chat
from modelmux.translate.registry import PROTOCOLS
from modelmux.translate.token_estimate import estimate_input_tokens
from tests.claude_code_requests import claude_code_turn

ROUTES = """
providers:
  chat: {protocol: openai-chat, base_url: "https://api.deepseek.com", credentials: [{label: c, key: chat-key-1}],
         models: [{name: deepseek-chat, max_output: 8192}]}
  resp: {protocol: openai-responses, base_url: "https://api.openai.com/v1", credentials: [{label: r, key: r-key}],
         models: [{name: gpt-5-mini, max_output: 8192}]}
  gem: {protocol: gemini, base_url: "https://generativelanguage.googleapis.com/v1beta",
        credentials: [{label: g, key: g-key}], models: [{name: gemini-2.5-pro, max_output: 8192},
                                                         {name: gemini-3-pro-preview, max_output: 8192}]}
  vendor: {protocol: anthropic, base_url: "https://api.z.ai/api/anthropic", credentials: [{label: v, key: v-key}],
           models: [{name: glm-4.6, max_output: 8192}]}
  anthropic: {protocol: anthropic, base_url: "https://api.anthropic.com", auth: passthrough,
              models: [{name: claude-mine, max_output: 8192}]}
default: null
"""
CLIENT = {"anthropic-version": "2023-06-01", "content-type": "application/json", "x-api-key": "sk-ant-client",
          "x-claude-code-session-id": "session-1"}
# A schema with what the Gemini translator rewrites (unions, allOf, $ref, const).
SCHEMA = {
    "type": "object",
    "$defs": {"path": {"type": "string", "description": "a path"}},
    "properties": {
        "mode": {"anyOf": [{"const": "a"}, {"const": "b"}, {"type": "null"}]},
        "target": {"oneOf": [{"type": "object", "properties": {"x": {"const": "1"}}, "required": ["x"]},
                             {"type": "object", "properties": {"x": {"const": "2"}, "y": {"type": "integer"}}}]},
        "both": {"allOf": [{"type": "object", "properties": {"p": {"$ref": "#/$defs/path"}}},
                           {"properties": {"q": {"type": ["string", "null"]}}, "required": ["q"]}]},
    },
}
MEDIA = [
    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
    {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "PELICAN"}, "title": "t"},
    {"type": "text", "text": "what is in these?", "cache_control": {"type": "ephemeral"}},
]


def bodies() -> list[dict[str, Any]]:
    turn = claude_code_turn()
    turn["tools"].append({"name": "schema_heavy", "input_schema": SCHEMA})
    turn["messages"].append({"role": "user", "content": MEDIA})
    return [claude_code_request(), turn]


@pytest.mark.parametrize("model", ["deepseek-chat", "gpt-5-mini", "gemini-2.5-pro", "glm-4.6", "claude-mine"])
@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("which", [0, 1])
def test_no_reader_on_the_way_upstream_changes_the_body(model: str, stream: bool, which: int):
    cfg = loader.parse(yaml.safe_load(ROUTES), Path("/routes.yaml"), {})
    body = {**bodies()[which], "model": model, "stream": stream}
    raw = json.dumps(body).encode()
    parsed, model_at = validation.parse_placed(raw)
    validation.check(parsed)
    decision = routing.route(cfg, model, None, routing.Facts(parsed, CLIENT, None))
    decision = replace(decision, model_facts=model_facts.facts_for(decision.provider, decision.upstream_model, {}))
    messages.is_warmup(parsed)
    session_of(CLIENT, parsed)
    estimate_input_tokens(parsed)
    credential = decision.provider.credentials[0] if decision.provider.credentials else None
    outgoing = exchange.prepare(decision, parsed, raw, "/v1/messages", "", CLIENT, credential, model_at)
    if outgoing.translation is not None:
        exchange.estimate(outgoing.translation, parsed)
    assert parsed == json.loads(raw)  # not a copy taken now: the items may be an earlier request's
    # The tools a translator built once (repeated.section) are the same the next time.
    again = exchange.prepare(decision, parsed, raw, "/v1/messages", "", CLIENT, credential, model_at)
    assert again.content == outgoing.content


def test_messages_openai_merges_are_new_ones_and_each_turn_reads_the_same_the_next_time():
    """Chat takes no two messages of one role in a row, so modelmux merges them; the
    turns it merges are shared with the next request (repeated.translated)."""
    cfg = loader.parse(yaml.safe_load(ROUTES), Path("/routes.yaml"), {})
    body = {"model": "deepseek-chat", "max_tokens": 100, "messages": [
        {"role": "user", "content": [{"type": "text", "text": "one " * 80}]},
        {"role": "user", "content": [{"type": "text", "text": "two " * 80}]},
        {"role": "assistant", "content": [{"type": "text", "text": "three " * 80}]},
        {"role": "assistant", "content": [{"type": "text", "text": "four " * 80}]},
        {"role": "user", "content": "five"},
    ]}
    raw = json.dumps(body).encode()
    decision = routing.route(cfg, "deepseek-chat", None, routing.Facts(body, CLIENT, None))
    built = []
    for _ in range(2):
        parsed, model_at = validation.parse_placed(raw)
        built.append(to_chat(parsed, decision.provider.shape, "deepseek-chat")["messages"])
        sent = exchange.prepare(decision, parsed, raw, "/v1/messages", "", CLIENT,
                                decision.provider.credentials[0], model_at).content
        assert json.loads(sent)["messages"] == built[-1]
    assert [m["content"].split()[::80] for m in built[0]] == [["one", "two"], ["three", "four"], ["five"]]
    assert built[1] == built[0]


def _turns_of(conversation: dict[str, Any]) -> list[dict[str, Any]]:
    """The requests of a session that grows to `conversation`: each one the earlier turns
    again, the last user message carrying cache_control as Claude Code marks it."""
    requests = []
    messages = conversation["messages"]
    # Two messages of one role in a row, as a client may send: OpenAI Chat takes them merged.
    first_user = next(i for i, m in enumerate(messages) if m["role"] == "user")
    messages = [*messages[: first_user + 1],
                {"role": "user", "content": [{"type": "text", "text": "And one more thing. " * 20}]},
                *messages[first_user + 1 :]]
    for end in range(1, len(messages) + 1):
        if messages[end - 1]["role"] != "user":
            continue
        turn = json.loads(json.dumps(messages[:end]))
        last = turn[-1]
        if isinstance(last["content"], list) and last["content"]:
            last["content"][-1]["cache_control"] = {"type": "ephemeral"}
        requests.append({**conversation, "messages": turn})
    return requests


@pytest.mark.parametrize("model", ["deepseek-chat", "gpt-5-mini", "gemini-2.5-pro", "gemini-3-pro-preview"])
def test_a_session_sent_turn_by_turn_is_sent_upstream_as_without_anything_reused(model: str):
    """What Recent and repeated reuse from earlier requests (parsed items, translated
    turns, their JSON) changes nothing the upstream gets: each request of a growing
    session is sent byte for byte as when it is read and translated afresh."""
    cfg = loader.parse(yaml.safe_load(ROUTES), Path("/routes.yaml"), {})
    for conversation in (claude_code_request(), claude_code_turn()):
        for body in _turns_of({**conversation, "model": model}):
            raw = json.dumps(body).encode()
            decision = routing.route(cfg, model, None, routing.Facts(body, CLIENT, None))
            credential = decision.provider.credentials[0]
            reused, model_at = validation.parse_placed(raw)
            validation.check(reused)
            afresh = json.loads(raw)  # items Recent never gave out: nothing is kept for them
            sent = [exchange.prepare(decision, parsed, raw, "/v1/messages", "", CLIENT, credential, at).content
                    for parsed, at in ((reused, model_at), (afresh, None))]
            assert sent[0] == sent[1]
            # The translation itself too, not only its JSON: a reused message changed in
            # place after its JSON was written would not show in the bytes.
            translate = PROTOCOLS[decision.provider.protocol].translation.request
            assert translate(reused, decision.provider.shape, model, None) == translate(afresh, decision.provider.shape,
                                                                                         model, None)

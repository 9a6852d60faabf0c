"""Anthropic → Chat Completions requests: exact bodies for every rule."""

from __future__ import annotations

import pytest

from claude_code_requests import LONG_TOOL, SHORT_TOOL, claude_code_turn

from modelmux.config.types import Shape
from modelmux.translate.openai_chat import to_chat
from modelmux.translate.openai_chat.request import CONTINUED, IMAGE_BELOW, NO_RESULT

PNG = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}


def chat(body: dict, **shape: object) -> dict:
    return to_chat(body, Shape(**shape), "gpt-test")


def test_a_claude_code_turn_in_full():
    body = claude_code_turn()
    assert chat(body) == {
        "model": "gpt-test",
        "messages": [
            {"role": "system", "content": "You are Claude Code.\n\nBe brief."},
            {"role": "user", "content": "<system-reminder>ctx</system-reminder>\n\nlist files"},
            {"role": "assistant", "content": "Running ls.", "tool_calls": [
                {"id": "toolu_1", "type": "function", "function": {"name": "Bash", "arguments": '{"command":"ls"}'}},
                {"id": "functions.Bash:1", "type": "function", "function": {"name": SHORT_TOOL, "arguments": "{}"}},
            ]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "a.py\nb.py"},
            {"role": "tool", "tool_call_id": "functions.Bash:1", "content": "Error: browser crashed"},
            {"role": "user", "content": "here you go"},
            {"role": "system", "content": "The user changed directory."},
            {"role": "user", "content": "thanks"},
        ],
        "tools": [
            {"type": "function", "function": {"name": "Bash", "description": "Run a command",
                                              "parameters": {"type": "object", "properties": {"command": {"type": "string"}}}}},
            {"type": "function", "function": {"name": SHORT_TOOL, "parameters": {"type": "object"}}},
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "max_tokens": 32000,
        "stop": ["END"],
        "temperature": 1,
        "user": "user_" + "a" * 59,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_provider_shape_is_data():
    body = {"model": "m", "max_tokens": 32000, "temperature": 0.2, "stop_sequences": ["a", "b", "c", "d", "e"],
            "thinking": {"type": "enabled", "budget_tokens": 31999}, "messages": [{"role": "user", "content": "hi"}]}
    assert chat(body, max_tokens_field="max_completion_tokens", max_tokens_limit=8192, drop_fields=frozenset({"temperature"}),
                reasoning_effort=True) == {
        "model": "gpt-test", "messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 8192,
        "stop": ["a", "b", "c", "d"], "reasoning_effort": "high"}


@pytest.mark.parametrize("thinking, config, effort", [
    ({"type": "enabled", "budget_tokens": 1024}, None, "low"),
    ({"type": "enabled", "budget_tokens": 4096}, None, "medium"),
    ({"type": "enabled", "budget_tokens": 16384}, None, "high"),
    ({"type": "adaptive"}, None, "medium"),
    ({"type": "adaptive"}, {"effort": "low"}, "low"),
    ({"type": "adaptive"}, {"effort": "max"}, "high"),
    ({"type": "disabled"}, None, None),
])
def test_reasoning_effort_buckets(thinking, config, effort):
    body = {"messages": [], "thinking": thinking, **({"output_config": config} if config else {})}
    assert chat(body, reasoning_effort=True).get("reasoning_effort") == effort
    assert "reasoning_effort" not in chat(body)  # only for providers that take it


@pytest.mark.parametrize("model, switch, effort", [
    ("o3", None, "medium"), ("gpt-5.1", None, "medium"), ("gpt-oss-120b", None, "medium"), ("gemini-2.5-pro", None, "medium"),
    ("gpt-4o", None, None), ("gpt-5-chat-latest", None, None), ("deepseek-chat", None, None),
    ("o3", False, None), ("gpt-5.1", False, None),  # the provider's switch wins either way
    ("gpt-4o", True, "medium"), ("deepseek-reasoner", True, "medium"),
])  # fmt: skip
def test_reasoning_effort_goes_to_reasoning_models_unless_the_provider_says(model, switch, effort):
    body = {"messages": [], "thinking": {"type": "enabled", "budget_tokens": 8000}}
    assert to_chat(body, Shape(reasoning_effort=switch), model).get("reasoning_effort") == effort
    assert "reasoning_effort" not in to_chat({"messages": []}, Shape(reasoning_effort=switch), model)  # no thinking asked


@pytest.mark.parametrize("choice, expected", [
    ({"type": "auto"}, "auto"), ({"type": "any"}, "required"), ({"type": "none"}, "none"),
    ({"type": "tool", "name": LONG_TOOL}, {"type": "function", "function": {"name": SHORT_TOOL}}),
])
def test_tool_choice(choice, expected):
    body = {"messages": [], "tools": [{"name": LONG_TOOL, "input_schema": {}}], "tool_choice": choice}
    assert chat(body)["tool_choice"] == expected


def test_no_function_tools_means_no_tools_or_choice():
    body = {"messages": [], "tools": [{"type": "bash_20250124", "name": "bash"}], "tool_choice": {"type": "any"}}
    assert chat(body) == {"model": "gpt-test", "messages": []}


def test_images_documents_and_hoisting():
    body = {"messages": [
        {"role": "user", "content": [{"type": "image", "source": PNG},
                                     {"type": "image", "source": {"type": "url", "url": "https://x/y.jpg"}},
                                     {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}, "title": "spec.pdf"},
                                     {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain doc"}},
                                     {"type": "text", "text": "what is this?"}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Shot", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [
            {"type": "text", "text": "screenshot taken"}, {"type": "image", "source": PNG}]}]},
    ]}
    png_part = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    assert chat(body, documents=True)["messages"] == [
        {"role": "user", "content": [
            png_part,
            {"type": "image_url", "image_url": {"url": "https://x/y.jpg"}},
            {"type": "file", "file": {"filename": "spec.pdf", "file_data": "data:application/pdf;base64,JVBE"}},
            {"type": "text", "text": "plain doc"},
            {"type": "text", "text": "what is this?"},
        ]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "t1", "type": "function", "function": {"name": "Shot", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "t1", "content": f"screenshot taken\n{IMAGE_BELOW}"},
        {"role": "user", "content": [png_part]},
    ]
    no_media = chat(body, images=False)["messages"]
    assert no_media[0] == {"role": "user", "content": (
        "[image omitted: this model does not accept images]\n\n[image omitted: this model does not accept images]\n\n"
        "[document omitted: this model does not accept documents]\n\nplain doc\n\nwhat is this?")}
    assert no_media[2:] == [{"role": "tool", "tool_call_id": "t1", "content": (
        "screenshot taken\n[image omitted: this model does not accept images]")}]


def test_history_is_made_valid_for_openai():
    body = {"messages": [
        {"role": "assistant", "content": "I start."},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "A", "input": {"x": 1}},
                                          {"type": "tool_use", "id": "t2", "name": "B", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "one"},
                                     {"type": "tool_result", "tool_use_id": "gone", "content": "orphan"}]},
        {"role": "user", "content": "and?"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm", "signature": ""}]},
        {"role": "user", "content": "again"},
    ]}
    assert chat(body)["messages"] == [
        {"role": "user", "content": CONTINUED},
        {"role": "assistant", "content": "I start.", "tool_calls": [
            {"id": "t1", "type": "function", "function": {"name": "A", "arguments": '{"x":1}'}},
            {"id": "t2", "type": "function", "function": {"name": "B", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "t1", "content": "one"},
        {"role": "tool", "tool_call_id": "t2", "content": NO_RESULT},
        {"role": "user", "content": "[result of tool call gone]\norphan\n\nand?\n\nagain"},
    ]
    # a provider that needs its reasoning back (DeepSeek) gets it on the assistant turn
    assert chat(body, reasoning_history=True)["messages"][-2:] == [
        {"role": "assistant", "content": None, "reasoning_content": "hmm"},
        {"role": "user", "content": "again"},
    ]

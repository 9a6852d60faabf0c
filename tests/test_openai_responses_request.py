"""Anthropic → OpenAI Responses requests: exact bodies for every rule."""

from __future__ import annotations

import base64
import json

import pytest
from claude_code_requests import LONG_TOOL, SHORT_TOOL, claude_code_turn

from modelmux.config.types import Shape
from modelmux.translate.anthropic_side import DOCUMENT_OMITTED, IMAGE_OMITTED, NO_RESULT
from modelmux.translate.openai_responses import EFFORTS, to_responses
from modelmux.translate.openai_responses.reasoning_state import PREFIX, Reasoning, pack, unpack

PNG = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}
PNG_PART = {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="}
SEALED = pack(Reasoning("rs_1", "gAAAA-encrypted-1", "gpt-test"))


def responses(body: dict, effort: str | None = None, **shape: object) -> dict:
    return to_responses(body, Shape(**shape), "gpt-test", effort=effort)


def user(text: str) -> dict:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def test_a_claude_code_turn_in_full():
    body = claude_code_turn(SEALED)
    assert responses(body, reasoning_effort=True) == {
        "model": "gpt-test",
        "instructions": "You are Claude Code.\n\nBe brief.",
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "<system-reminder>ctx</system-reminder>"},
                                                             {"type": "input_text", "text": "list files"}]},
            {"type": "reasoning", "summary": [], "encrypted_content": "gAAAA-encrypted-1"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Running ls."}]},
            {"type": "function_call", "call_id": "toolu_1", "name": "Bash", "arguments": '{"command":"ls"}'},
            {"type": "function_call", "call_id": "functions.Bash:1", "name": SHORT_TOOL, "arguments": "{}"},
            {"type": "function_call_output", "call_id": "toolu_1", "output": "a.py\nb.py"},
            {"type": "function_call_output", "call_id": "functions.Bash:1", "output": "Error: browser crashed"},
            user("here you go"),
            {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "The user changed directory."}]},
            user("thanks"),
        ],
        "tools": [
            {"type": "function", "name": "Bash", "description": "Run a command",
             "parameters": {"type": "object", "properties": {"command": {"type": "string"}}}, "strict": False},
            {"type": "function", "name": SHORT_TOOL, "parameters": {"type": "object"}, "strict": False},
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "max_output_tokens": 32000,
        "user": "user_" + "a" * 59,
        "reasoning": {"effort": "high", "summary": "auto"},
        "include": ["reasoning.encrypted_content"],
        "store": False,
        "stream": True,
    }


def test_a_plain_request_stores_nothing_and_asks_no_reasoning():
    body = {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}
    # Claude Code's model probe asks 1 token; OpenAI's floor is 16
    assert responses(body) == {"model": "gpt-test", "input": [user("hi")], "max_output_tokens": 16, "store": False}


def test_provider_shape_is_data():
    body = {"model": "m", "max_tokens": 32000, "temperature": 0.2, "top_p": 0.9, "messages": [{"role": "user", "content": "hi"}]}
    assert responses(body, max_tokens_limit=8192, drop_fields=frozenset({"temperature", "store"})) == {
        "model": "gpt-test", "input": [user("hi")], "max_output_tokens": 8192, "top_p": 0.9}


@pytest.mark.parametrize("thinking, config, reasoning", [
    ({"type": "enabled", "budget_tokens": 1024}, None, {"effort": "low", "summary": "auto"}),
    ({"type": "enabled", "budget_tokens": 4096}, None, {"effort": "medium", "summary": "auto"}),
    ({"type": "enabled", "budget_tokens": 16384}, None, {"effort": "high", "summary": "auto"}),
    ({"type": "enabled", "budget_tokens": 31999}, None, {"effort": "high", "summary": "auto"}),
    ({"type": "adaptive"}, None, {"effort": "medium", "summary": "auto"}),
    ({"type": "adaptive"}, {"effort": "low"}, {"effort": "low", "summary": "auto"}),
    ({"type": "adaptive"}, {"effort": "max"}, {"effort": "high", "summary": "auto"}),
    # no thinking asked: the model's own default effort, and no summaries to show
    ({"type": "disabled"}, None, None),
    (None, None, None),
])
def test_thinking_maps_to_reasoning(thinking, config, reasoning):
    body = {"messages": [], **({"thinking": thinking} if thinking else {}), **({"output_config": config} if config else {})}
    out = responses(body, reasoning_effort=True)
    assert (out.get("reasoning"), out["include"], out["store"]) == (reasoning, ["reasoning.encrypted_content"], False)
    assert "reasoning" not in responses(body) and "include" not in responses(body)  # a model that does not reason


@pytest.mark.parametrize("effort", EFFORTS)
def test_the_routes_effort_overrides_the_clients(effort):
    body = {"messages": [], "thinking": {"type": "enabled", "budget_tokens": 1024}}
    expected = {"effort": effort} if effort == "none" else {"effort": effort, "summary": "auto"}
    assert responses(body, effort=effort)["reasoning"] == expected  # whatever the provider's shape says
    assert responses({"messages": []}, effort=effort)["reasoning"] == expected


def test_a_reasoning_model_gets_no_sampling_parameters():
    body = {"messages": [], "temperature": 0.2, "top_p": 0.9}
    assert (responses(body)["temperature"], responses(body)["top_p"]) == (0.2, 0.9)
    assert "temperature" not in responses(body, reasoning_effort=True) and "top_p" not in responses(body, effort="low")
    assert responses(body, effort="none")["temperature"] == 0.2  # no reasoning: sampling as asked


def test_summaries_can_be_switched_off_and_efforts_are_checked():
    body = {"messages": [], "thinking": {"type": "enabled", "budget_tokens": 8000}}
    assert to_responses(body, Shape(reasoning_effort=True), "m", summary=None)["reasoning"] == {"effort": "medium"}
    with pytest.raises(ValueError, match="reasoning effort 'max' is not one of none, minimal, low, medium, high, xhigh"):
        responses(body, effort="max")


@pytest.mark.parametrize("choice, expected", [
    ({"type": "auto"}, "auto"), ({"type": "any"}, "required"), ({"type": "none"}, "none"),
    ({"type": "tool", "name": LONG_TOOL}, {"type": "function", "name": SHORT_TOOL}),
])
def test_tool_choice(choice, expected):
    body = {"messages": [], "tools": [{"name": LONG_TOOL, "input_schema": {}}], "tool_choice": choice}
    assert responses(body)["tool_choice"] == expected


def test_no_function_tools_means_no_tools_or_choice():
    body = {"messages": [], "tools": [{"type": "bash_20250124", "name": "bash"}], "tool_choice": {"type": "any"}}
    assert responses(body) == {"model": "gpt-test", "input": [], "store": False}


def test_images_and_documents_in_messages_and_tool_results():
    pdf = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}, "title": "spec.pdf"}
    body = {"messages": [
        {"role": "user", "content": [{"type": "image", "source": PNG},
                                     {"type": "image", "source": {"type": "url", "url": "https://x/y.jpg"}},
                                     pdf,
                                     {"type": "document", "source": {"type": "url", "url": "https://x/z.pdf"}},
                                     {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain doc"}},
                                     {"type": "text", "text": "what is this?"}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Shot", "input": {}},
                                          {"type": "tool_use", "id": "t2", "name": "Read", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t1", "is_error": True, "content": [
                {"type": "text", "text": "partial screenshot"}, {"type": "image", "source": PNG}]},
            {"type": "tool_result", "tool_use_id": "t2", "content": [pdf]}]},
    ]}
    pdf_part = {"type": "input_file", "filename": "spec.pdf", "file_data": "data:application/pdf;base64,JVBE"}
    assert responses(body, documents=True)["input"] == [
        {"type": "message", "role": "user", "content": [
            PNG_PART,
            {"type": "input_image", "image_url": "https://x/y.jpg"},
            pdf_part,
            {"type": "input_file", "file_url": "https://x/z.pdf"},
            {"type": "input_text", "text": "plain doc"},
            {"type": "input_text", "text": "what is this?"},
        ]},
        {"type": "function_call", "call_id": "t1", "name": "Shot", "arguments": "{}"},
        {"type": "function_call", "call_id": "t2", "name": "Read", "arguments": "{}"},
        # a result with media is a list of parts, which function_call_output carries as it is
        {"type": "function_call_output", "call_id": "t1", "output": [
            {"type": "input_text", "text": "Error:"}, {"type": "input_text", "text": "partial screenshot"}, PNG_PART]},
        {"type": "function_call_output", "call_id": "t2", "output": [pdf_part]},
    ]
    no_media = responses(body, images=False)["input"]
    assert no_media[0]["content"] == [{"type": "input_text", "text": text} for text in (
        IMAGE_OMITTED, IMAGE_OMITTED, DOCUMENT_OMITTED, DOCUMENT_OMITTED, "plain doc", "what is this?")]
    assert no_media[3:] == [
        {"type": "function_call_output", "call_id": "t1", "output": f"Error: partial screenshot\n\n{IMAGE_OMITTED}"},
        {"type": "function_call_output", "call_id": "t2", "output": DOCUMENT_OMITTED},
    ]


def test_every_call_is_answered_before_the_next_message():
    body = {"messages": [
        {"role": "assistant", "content": "I start."},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "A", "input": {"x": 1}},
                                          {"type": "tool_use", "id": "t2", "name": "B", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "one"},
                                     {"type": "tool_result", "tool_use_id": "gone", "content": "orphan"}]},
        {"role": "user", "content": "and?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t3", "name": "C", "input": {}}]},
        {"role": "system", "content": "interrupted"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t4", "name": "D", "input": {}}]},
    ]}
    assert responses(body)["input"] == [
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "I start."}]},
        {"type": "function_call", "call_id": "t1", "name": "A", "arguments": '{"x":1}'},
        {"type": "function_call", "call_id": "t2", "name": "B", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "t1", "output": "one"},
        {"type": "function_call_output", "call_id": "t2", "output": NO_RESULT},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "[result of tool call gone]\norphan"},
                                                         {"type": "input_text", "text": "and?"}]},
        {"type": "function_call", "call_id": "t3", "name": "C", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "t3", "output": NO_RESULT},
        {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "interrupted"}]},
        {"type": "function_call", "call_id": "t4", "name": "D", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "t4", "output": NO_RESULT},
    ]


def test_only_signatures_modelmux_made_for_this_model_go_upstream():
    forged = PREFIX + base64.b64encode(json.dumps({"id": "rs_x", "ec": "e", "model": "other-model"}).encode()).decode()
    thinking = [
        {"type": "thinking", "thinking": "a real Anthropic one", "signature": "EqQBCkYIBxgCKkBsig=="},
        {"type": "thinking", "thinking": "another model's", "signature": forged},
        {"type": "thinking", "thinking": "broken", "signature": PREFIX + "not base64!"},
        {"type": "thinking", "thinking": "no signature"},
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy"},
        {"type": "thinking", "thinking": "", "signature": SEALED},
        {"type": "text", "text": "Done."},
    ]
    body = {"messages": [{"role": "user", "content": "go"}, {"role": "assistant", "content": thinking}]}
    assert responses(body)["input"][1:] == [
        {"type": "reasoning", "summary": [], "encrypted_content": "gAAAA-encrypted-1"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Done."}]},
    ]
    assert unpack(forged, "other-model") == Reasoning("rs_x", "e", "other-model")
    assert unpack(SEALED, "gpt-test") == Reasoning("rs_1", "gAAAA-encrypted-1", "gpt-test")

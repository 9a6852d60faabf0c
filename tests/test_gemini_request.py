"""Anthropic → Gemini generateContent requests: exact bodies for every rule."""

from __future__ import annotations

import base64
import hashlib

import pytest

from modelmux.config.types import Shape
from modelmux.errors import GatewayError
from modelmux.translate.anthropic_side import CONTINUED, IMAGE_BELOW, NO_RESULT
from modelmux.translate.gemini import (
    Context,
    context_for,
    function_name,
    path,
    restore_map,
    to_gemini,
)
from modelmux.translate.gemini.request import NO_CONTENT
from modelmux.translate.thought_signatures import DUMMY, without_gemini_thinking

LONG_TOOL = "mcp__plugin_superpowers_superpowers-chrome__use_browser_with_a_really_long_name"
SHORT_TOOL = LONG_TOOL[:55] + "_" + hashlib.sha256(LONG_TOOL.encode()).hexdigest()[:8]
PNG = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}
SIG_A = "CiQBcsjafGSpLlC+3o7lbTTA2tOVpqu5i/Q1Kr1I="  # Gemini's base64, kept as it is
SIG_B = "EuYBCuMBAdHtim9tU2pQ=="
ANTHROPIC_SIG = "EqQBCkgIBxABGAIqQKbtNO0rYXeFTJWqGzv0Pn0="
BASH = {"name": "Bash", "description": "Run a command",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"],
                         "additionalProperties": False, "$schema": "https://json-schema.org/draft/2020-12/schema"}}  # fmt: skip
BASH_DECLARATION = {"name": "Bash", "description": "Run a command",
                    "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}  # fmt: skip


def gemini(body: dict, model: str = "gemini-2.5-pro", effort=None, **shape: object) -> dict:
    return to_gemini(body, Shape(**shape), model, effort)


def contents(messages: list, model: str = "gemini-2.5-pro", **shape: object) -> list:
    return gemini({"messages": messages}, model, **shape)["contents"]


def call(id: str, name: str = "Bash", **args: object) -> dict:
    return {"type": "tool_use", "id": id, "name": name, "input": args}


def result(id: str, content: object = "ok", **extra: object) -> dict:
    return {"type": "tool_result", "tool_use_id": id, "content": content, **extra}


def test_a_claude_code_turn_in_full():
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 32000,
        "stream": True,
        "temperature": 1,
        "top_p": 0.9,
        "top_k": 40,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "user_abc"},
        "thinking": {"type": "enabled", "budget_tokens": 10000},
        "context_management": {"edits": []},
        "system": [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197.fbe; cc_entrypoint=sdk-cli;"},
            {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Be brief."},
        ],
        "tools": [
            {**BASH, "cache_control": {"type": "ephemeral"}},
            {"name": LONG_TOOL, "input_schema": {"type": "object", "properties": {}}},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
        ],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "<system-reminder>ctx</system-reminder>"},
                                         {"type": "text", "text": ""},
                                         {"type": "text", "text": "list files", "cache_control": {"type": "ephemeral"}}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "I should run ls", "signature": f"gemini-next:{SIG_A}"},
                {"type": "text", "text": "Running ls."},
                call("toolu_1", command="ls"),
                call("toolu_2", LONG_TOOL),
            ]},
            {"role": "user", "content": [
                {"type": "text", "text": "here you go"},
                result("toolu_2", [{"type": "text", "text": "browser crashed"}], is_error=True),
                result("toolu_1", "a.py\nb.py"),
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Claude's own thought", "signature": ANTHROPIC_SIG},
                {"type": "redacted_thinking", "data": "xyz"},
                {"type": "text", "text": "Two files."},
            ]},
            {"role": "user", "content": "thanks"},
        ],
    }
    assert gemini(body) == {
        "systemInstruction": {"parts": [{"text": "You are Claude Code."}, {"text": "Be brief."}]},
        "contents": [
            {"role": "user", "parts": [{"text": "<system-reminder>ctx</system-reminder>"}, {"text": "list files"}]},
            {"role": "model", "parts": [
                {"text": "Running ls.", "thoughtSignature": SIG_A},
                {"functionCall": {"name": "Bash", "args": {"command": "ls"}}},
                {"functionCall": {"name": SHORT_TOOL, "args": {}}},
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "Bash", "response": {"output": "a.py\nb.py"}}},
                {"functionResponse": {"name": SHORT_TOOL, "response": {"error": "browser crashed"}}},
                {"text": "here you go"},
            ]},
            {"role": "model", "parts": [{"text": "Two files."}]},
            {"role": "user", "parts": [{"text": "thanks"}]},
        ],
        "tools": [{"functionDeclarations": [BASH_DECLARATION, {"name": SHORT_TOOL}]}],
        "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
        "generationConfig": {
            "maxOutputTokens": 32000, "temperature": 1, "topP": 0.9, "topK": 40, "stopSequences": ["END"],
            "thinkingConfig": {"thinkingBudget": 10000, "includeThoughts": True},
        },
    }  # fmt: skip


def test_paths():
    assert path("gemini-2.5-pro", stream=False) == "/models/gemini-2.5-pro:generateContent"
    assert path("gemini-2.5-pro", stream=True) == "/models/gemini-2.5-pro:streamGenerateContent?alt=sse"


# -- turns ---------------------------------------------------------------------------


def test_same_role_neighbours_merge_and_a_history_starts_with_the_user():
    assert contents([
        {"role": "assistant", "content": "Hello."},
        {"role": "assistant", "content": [{"type": "text", "text": NO_CONTENT}, {"type": "text", "text": "Again."}]},
        {"role": "user", "content": "a"},
        {"role": "user", "content": [{"type": "text", "text": ""}]},
        {"role": "user", "content": "b"},
        {"role": "system", "content": "a system note"},
    ]) == [
        {"role": "user", "parts": [{"text": CONTINUED}]},
        {"role": "model", "parts": [{"text": "Hello."}, {"text": "Again."}]},
        {"role": "user", "parts": [{"text": "a"}, {"text": "b"}]},
    ]  # fmt: skip


def test_system_messages_join_the_system_instruction():
    body = {"system": "Be kind.", "messages": [{"role": "user", "content": "hi"}, {"role": "system", "content": "Now in /tmp."}]}
    assert gemini(body)["systemInstruction"] == {"parts": [{"text": "Be kind."}, {"text": "Now in /tmp."}]}
    assert "systemInstruction" not in gemini({"messages": [{"role": "user", "content": "hi"}]})


def test_every_call_gets_exactly_one_answer_in_call_order():
    assert contents([
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [call("a", command="1"), call("b", command="2"), call("c", command="3")]},
        {"role": "user", "content": [result("c", "third"), result("a", "first"), {"type": "text", "text": "note"}]},
    ]) == [
        {"role": "user", "parts": [{"text": "go"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "Bash", "args": {"command": "1"}}},
                                    {"functionCall": {"name": "Bash", "args": {"command": "2"}}},
                                    {"functionCall": {"name": "Bash", "args": {"command": "3"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "Bash", "response": {"output": "first"}}},
                                   {"functionResponse": {"name": "Bash", "response": {"error": NO_RESULT}}},
                                   {"functionResponse": {"name": "Bash", "response": {"output": "third"}}},
                                   {"text": "note"}]},
    ]  # fmt: skip


def test_results_whose_call_is_not_the_last_turns_become_text():
    assert contents([
        {"role": "user", "content": [result("gone", "compacted away")]},
        {"role": "assistant", "content": [call("a")]},
        {"role": "user", "content": [result("a", "fine")]},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [result("a", "late", is_error=True)]},
    ]) == [
        {"role": "user", "parts": [{"text": "[result of tool call gone]\ncompacted away"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "Bash", "args": {}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "Bash", "response": {"output": "fine"}}}]},
        {"role": "model", "parts": [{"text": "ok"}]},
        {"role": "user", "parts": [{"text": "[result of tool call a]\nError: late"}]},
    ]  # fmt: skip


def test_gemini_call_ids_go_back_on_the_call_and_its_response():
    """FunctionCall.id: "return the response with the matching id". Only Gemini's own
    ids (behind gemini_, or encoded when an Anthropic client would reject them) go
    back; modelmux's toolu_ stand-ins and other providers' ids do not."""
    odd = "mmx_" + base64.urlsafe_b64encode(b"gemini_call/7:x").decode().rstrip("=")
    out = contents([
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [call("gemini_a1b2"), call(odd), call("toolu_0123456789abcdef01234567"),
                                          call("call_abc"), call("gemini_")]},
        {"role": "user", "content": [result("gemini_a1b2"), result(odd, "bad", is_error=True), result("call_abc")]},
    ])  # fmt: skip
    assert out[1]["parts"] == [
        {"functionCall": {"name": "Bash", "args": {}, "id": "a1b2"}},
        {"functionCall": {"name": "Bash", "args": {}, "id": "call/7:x"}},
        {"functionCall": {"name": "Bash", "args": {}}},
        {"functionCall": {"name": "Bash", "args": {}}},
        {"functionCall": {"name": "Bash", "args": {}}},
    ]
    assert out[2]["parts"] == [
        {"functionResponse": {"name": "Bash", "response": {"output": "ok"}, "id": "a1b2"}},
        {"functionResponse": {"name": "Bash", "response": {"error": "bad"}, "id": "call/7:x"}},
        {"functionResponse": {"name": "Bash", "response": {"error": NO_RESULT}}},
        {"functionResponse": {"name": "Bash", "response": {"output": "ok"}}},
        {"functionResponse": {"name": "Bash", "response": {"error": NO_RESULT}}},
    ]


def test_a_gemini_call_left_without_a_result_is_answered_with_its_id():
    out = contents([{"role": "user", "content": "go"}, {"role": "assistant", "content": [call("gemini_q")]}])
    assert out[-1] == {"role": "user", "parts": [
        {"functionResponse": {"name": "Bash", "response": {"error": NO_RESULT}, "id": "q"}}]}


def test_calls_at_the_end_of_the_history_are_answered():
    out = contents([{"role": "user", "content": "go"}, {"role": "assistant", "content": [call("a")]}])
    assert out[-1] == {"role": "user", "parts": [{"functionResponse": {"name": "Bash", "response": {"error": NO_RESULT}}}]}


def test_images_and_documents():
    pdf = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}}
    message = {"role": "user", "content": [
        {"type": "image", "source": PNG},
        {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
        pdf,
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain words"}},
        {"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": "inner"}]}},
        {"type": "document", "source": {"type": "url", "url": "https://x/paper"}},
    ]}  # fmt: skip
    assert contents([message], documents=True)[0]["parts"] == [
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"fileData": {"mimeType": "image/png", "fileUri": "https://x/y.png"}},  # Gemini fetches it
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
        {"text": "plain words"},
        {"text": "inner"},
        {"fileData": {"mimeType": "application/pdf", "fileUri": "https://x/paper"}},  # Anthropic's URL documents are PDFs
    ]
    parts = contents([message], images=False)[0]["parts"]
    assert parts[0] == {"text": "[image omitted: this model does not accept images]"}
    assert parts[1] == {"text": "[image omitted: this model does not accept images]"}
    assert parts[2] == {"text": "[document omitted: this model does not accept documents]"}


@pytest.mark.parametrize("url, mime", [
    ("https://cdn.example.com/a/photo.JPG?size=large#top", "image/jpeg"),
    ("https://example.com/x.jpeg", "image/jpeg"),
    ("https://example.com/x.webp", "image/webp"),
    ("https://example.com/x.gif", "image/gif"),  # Gemini says whether it reads it
    ("https://example.com/x.bmp", "image/bmp"),
    ("https://example.com/x.heic", "image/heic"),
])  # fmt: skip
def test_an_image_url_goes_as_file_data_with_the_type_its_path_shows(url, mime):
    message = {"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": url}}]}
    for model in ("gemini-2.5-flash", "gemini-3-pro-preview", "gemini-flash-latest"):
        assert contents([message], model)[0]["parts"] == [{"fileData": {"mimeType": mime, "fileUri": url}}]


WHERE = "messages[1].content[1].source.url"
NOT_HTTPS = "Gemini fetches only https URLs, not {!r}; give an https URL or send the image as base64"
TYPES = ".png, .jpg, .jpeg, .webp, .gif, .bmp, .heic, .heif"


@pytest.mark.parametrize("url, model, says", [
    ("http://example.com/a.png", "gemini-2.5-pro", NOT_HTTPS.format("http://example.com/a.png")),
    ("file:///etc/passwd.png", "gemini-2.5-pro", NOT_HTTPS.format("file:///etc/passwd.png")),
    ("https:///a.png", "gemini-2.5-pro", NOT_HTTPS.format("https:///a.png")),
    ("https://[::1/a.png", "gemini-2.5-pro", NOT_HTTPS.format("https://[::1/a.png")),
    (None, "gemini-2.5-pro", NOT_HTTPS.format(None)),
    ("https://example.com/a.png", "gemini-2.0-flash",
     "gemini-2.0-flash does not take files by URL (Google: the Gemini 2.0 family is not supported); send the image as base64"),
    ("https://example.com/a.png", "gemini-1.5-pro",
     "gemini-1.5-pro does not take files by URL (Google: the Gemini 2.0 family is not supported); send the image as base64"),
    ("https://example.com/image?id=7.png", "gemini-2.5-pro",
     f"Gemini needs the type of an image given by URL, and https://example.com/image?id=7.png does not end in one of "
     f"{TYPES}; send the image as base64"),
])  # fmt: skip
def test_an_image_url_gemini_cannot_take_is_a_400_naming_the_field(url, model, says):
    messages = [{"role": "user", "content": "hi"},
                {"role": "user", "content": [{"type": "text", "text": "look"}, {"type": "image", "source": {"type": "url", "url": url}}]}]
    with pytest.raises(GatewayError) as refused:
        contents(messages, model)
    assert (refused.value.status, refused.value.error_type, refused.value.message) == (
        400, "invalid_request_error", f"{WHERE}: {says}")


def test_an_image_url_in_a_tool_result_is_named_where_it_is():
    messages = [{"role": "user", "content": "shot"}, {"role": "assistant", "content": [call("a")]},
                {"role": "user", "content": [result("a", [{"type": "image", "source": {"type": "url", "url": "http://x/y.png"}}])]}]
    with pytest.raises(GatewayError, match=r"^messages\[2\]\.content\[0\]\.content\[0\]\.source\.url: "):
        contents(messages)


def test_images_in_tool_results_follow_the_answers():
    out = contents([
        {"role": "user", "content": "shot"},
        {"role": "assistant", "content": [call("a", "Screenshot")]},
        {"role": "user", "content": [result("a", [{"type": "text", "text": "taken"}, {"type": "image", "source": PNG}])]},
    ])
    assert out[-1]["parts"] == [
        {"functionResponse": {"name": "Screenshot", "response": {"output": f"taken\n{IMAGE_BELOW}"}}},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
    ]


# -- thought signatures -------------------------------------------------------------


def test_each_carrier_puts_its_signature_back_on_its_part():
    out = contents([{"role": "user", "content": "hi"}, {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "Planning.", "signature": f"gemini-thought:{SIG_A}"},
        {"type": "text", "text": "Answer."},
        {"type": "thinking", "thinking": "", "signature": f"gemini-previous:{SIG_B}"},
        {"type": "thinking", "thinking": "summary", "signature": "gemini-next:SIG_C"},
        {"type": "text", "text": ""},
        call("a"),
        call("b"),
    ]}])  # fmt: skip
    assert out[1]["parts"] == [
        {"text": "Planning.", "thought": True, "thoughtSignature": SIG_A},
        {"text": "Answer.", "thoughtSignature": SIG_B},
        {"functionCall": {"name": "Bash", "args": {}}, "thoughtSignature": "SIG_C"},
        {"functionCall": {"name": "Bash", "args": {}}},
    ]


@pytest.mark.parametrize("signature", [ANTHROPIC_SIG, "", None, "gemini-next:", "gemini:abc"])
def test_thinking_not_signed_by_gemini_is_never_sent(signature):
    out = contents([{"role": "user", "content": "hi"}, {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "secret thought", "signature": signature}, {"type": "text", "text": "Hi."}]}])
    assert out[1] == {"role": "model", "parts": [{"text": "Hi."}]}


def test_gemini_3_gets_the_stand_in_signature_on_current_calls_only():
    messages = [
        {"role": "user", "content": "first task"},
        {"role": "assistant", "content": [call("old")]},
        {"role": "user", "content": [result("old")]},
        {"role": "assistant", "content": "done"},
        {"role": "user", "content": "second task"},
        {"role": "assistant", "content": [call("p1"), call("p2")]},
        {"role": "user", "content": [result("p1"), result("p2"), {"type": "text", "text": "<system-reminder>"}]},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "", "signature": f"gemini-next:{SIG_A}"}, call("q")]},
        {"role": "user", "content": [result("q")]},
        {"role": "assistant", "content": [{"type": "text", "text": "then"}, call("r")]},
        {"role": "user", "content": [result("r")]},
    ]
    signed = [[p.get("thoughtSignature") for p in c["parts"] if "functionCall" in p] for c in contents(messages, "gemini-3-pro-preview")
              if c["role"] == "model"]  # fmt: skip
    assert signed == [[None], [], [DUMMY, None], [SIG_A], [DUMMY]]
    assert all(p.get("thoughtSignature") != DUMMY for c in contents(messages, "gemini-2.5-flash") for p in c["parts"])


def test_gemini_signed_thinking_is_removed_for_other_upstreams():
    body = {"model": "m", "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "", "signature": f"gemini-next:{SIG_A}"}, call("a")]},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "x", "signature": f"gemini-thought:{SIG_B}"}]},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "mine", "signature": ANTHROPIC_SIG}]},
    ]}  # fmt: skip
    assert without_gemini_thinking(body) == {"model": "m", "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [call("a")]},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "mine", "signature": ANTHROPIC_SIG}]},
    ]}  # fmt: skip
    plain = {"messages": [{"role": "user", "content": "hi"}]}
    assert without_gemini_thinking(plain) is plain


# -- tools and generation -----------------------------------------------------------


@pytest.mark.parametrize("choice, config", [
    ({"type": "auto"}, {"mode": "AUTO"}),
    ({"type": "any"}, {"mode": "ANY"}),
    ({"type": "tool", "name": "Bash"}, {"mode": "ANY", "allowedFunctionNames": ["Bash"]}),
    ({"type": "tool", "name": LONG_TOOL}, {"mode": "ANY", "allowedFunctionNames": [SHORT_TOOL]}),
    ({"type": "none"}, {"mode": "NONE"}),
])  # fmt: skip
def test_tool_choice(choice, config):
    body = {"messages": [{"role": "user", "content": "x"}], "tools": [BASH, {"name": LONG_TOOL, "input_schema": {}}], "tool_choice": choice}
    assert gemini(body)["toolConfig"] == {"functionCallingConfig": config}


def test_no_function_tools_means_no_tools_and_no_tool_config():
    body = {"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "web_search_20250305", "name": "web_search"}],
            "tool_choice": {"type": "any"}}  # fmt: skip
    assert set(gemini(body)) == {"contents"}


def test_function_names_gemini_accepts():
    assert function_name("Bash") == "Bash"
    assert function_name("mcp__server__do-thing.v2:x") == "mcp__server__do-thing.v2:x"
    odd = "my tool/with spaces"
    assert function_name(odd) == "my_tool_with_spaces_" + hashlib.sha256(odd.encode()).hexdigest()[:8]
    assert function_name("1st").startswith("_1st_")
    assert restore_map(["Bash", odd, LONG_TOOL]) == {function_name(odd): odd, SHORT_TOOL: LONG_TOOL}
    body = {"tools": [BASH, {"name": odd, "input_schema": {}}, {"type": "web_search_20250305", "name": "web_search"}]}
    assert context_for(body, "claude-sonnet-4-5") == Context("claude-sonnet-4-5", {function_name(odd): odd})


def test_generation_limits():
    body = {"messages": [{"role": "user", "content": "x"}], "max_tokens": 64000, "stop_sequences": list("abcdefg")}
    assert gemini(body, max_tokens_limit=8192)["generationConfig"] == {
        "maxOutputTokens": 8192, "stopSequences": ["a", "b", "c", "d", "e"]}


# -- thinking -----------------------------------------------------------------------

ENABLED = {"type": "enabled", "budget_tokens": 31999}


@pytest.mark.parametrize("model, thinking, effort, config", [
    # the client's own request
    ("gemini-2.5-pro", ENABLED, None, {"thinkingBudget": 31999, "includeThoughts": True}),
    ("gemini-2.5-flash", ENABLED, None, {"thinkingBudget": 24576, "includeThoughts": True}),
    ("gemini-2.5-pro", {"type": "adaptive"}, None, {"thinkingBudget": -1, "includeThoughts": True}),
    ("gemini-2.5-pro", None, None, None),
    ("gemini-2.5-pro", {"type": "disabled"}, None, None),
    ("gemini-3-pro-preview", ENABLED, None, {"thinkingLevel": "high", "includeThoughts": True}),
    ("gemini-3-pro-preview", {"type": "enabled", "budget_tokens": 10000}, None, {"thinkingLevel": "high", "includeThoughts": True}),
    ("gemini-3.1-pro-preview", {"type": "enabled", "budget_tokens": 10000}, None, {"thinkingLevel": "medium", "includeThoughts": True}),
    ("gemini-3-flash-preview", {"type": "enabled", "budget_tokens": 2000}, None, {"thinkingLevel": "low", "includeThoughts": True}),
    # the route's effort overrides it
    ("gemini-2.5-pro", ENABLED, "low", {"thinkingBudget": 2048, "includeThoughts": True}),
    ("gemini-2.5-pro", None, "none", {"thinkingBudget": 128, "includeThoughts": True}),  # 2.5 Pro cannot stop thinking
    ("gemini-2.5-flash", ENABLED, "none", {"thinkingBudget": 0, "includeThoughts": False}),
    ("gemini-2.5-flash-lite", None, "minimal", {"thinkingBudget": 512, "includeThoughts": True}),
    ("gemini-2.5-flash-lite", None, 100, {"thinkingBudget": 512, "includeThoughts": True}),
    ("gemini-2.5-pro", None, "xhigh", {"thinkingBudget": 32768, "includeThoughts": True}),
    ("gemini-2.5-pro", None, 50000, {"thinkingBudget": 32768, "includeThoughts": True}),
    ("gemini-3-pro-preview", ENABLED, "low", {"thinkingLevel": "low", "includeThoughts": True}),
    ("gemini-3-pro-preview", None, "medium", {"thinkingLevel": "high", "includeThoughts": True}),  # 3 Pro: low or high
    ("gemini-3-pro-preview", None, "none", {"thinkingLevel": "low", "includeThoughts": False}),
    ("gemini-3-flash-preview", None, "none", {"thinkingLevel": "minimal", "includeThoughts": False}),
    ("gemini-3-flash-preview", None, "medium", {"thinkingLevel": "medium", "includeThoughts": True}),
    ("gemini-3.1-pro-preview", None, "minimal", {"thinkingLevel": "low", "includeThoughts": True}),
    ("gemini-3.1-pro-preview", None, "xhigh", {"thinkingLevel": "high", "includeThoughts": True}),
    ("gemini-3.1-pro-preview", None, 20000, {"thinkingLevel": "high", "includeThoughts": True}),
    ("gemini-flash-latest", None, "high", {"thinkingBudget": 24576, "includeThoughts": True}),  # unknown version: a budget
    ("models/gemini-3-flash", None, "low", {"thinkingLevel": "low", "includeThoughts": True}),
    ("gemini-2.0-flash", ENABLED, "high", None),  # no thinking there: a thinkingConfig would be a 400
    ("gemma-3-27b-it", ENABLED, None, None),
])  # fmt: skip
def test_thinking(model, thinking, effort, config):
    body = {"messages": [{"role": "user", "content": "x"}]}
    if thinking:
        body["thinking"] = thinking
    assert gemini(body, model, effort).get("generationConfig", {}).get("thinkingConfig") == config


@pytest.mark.parametrize("effort, level, budget", [("low", "low", 2048), ("medium", "medium", 8192), ("max", "high", -1)])
def test_adaptive_thinking_follows_the_clients_effort(effort, level, budget):
    body = {"messages": [{"role": "user", "content": "x"}], "thinking": {"type": "adaptive"}, "output_config": {"effort": effort}}
    assert gemini(body, "gemini-2.5-pro")["generationConfig"]["thinkingConfig"]["thinkingBudget"] == budget
    assert gemini(body, "gemini-3-flash")["generationConfig"]["thinkingConfig"]["thinkingLevel"] == level



"""A `gemini` provider behind the real gateway, on both send paths (one key: mitmproxy
sends it; a pool: the failover relay does): an answer whose last text part is signed
ends with its text, Gemini's call ids come back on the call and its functionResponse,
and images by URL reach Gemini as fileData, or a 400 naming the field. Each is
checked on what the client got and on the exact body of the next request."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from gateway import Gateway
from gemini_upstream import (  # noqa: F401 (fixtures: fresh, gateway, server)
    CALL_SIGNATURE, CLIENT_KEY, GREETING, SIGNATURE, call, chunks, client, fresh, gateway, response, server, streaming,
    text, thought, whole,
)
from sse_checks import accumulated, validate
from test_gemini_gateway_answers import HI, WEATHER, stream_events
from upstream import Upstream

# gemini-* has one key (mitmproxy sends it); pooled-* two (the relay sends it, as gemini-2.5-flash).
PATHS = pytest.mark.parametrize("model", ["gemini-3-pro-preview", "pooled-flash"])
TEXT_SIGNATURE = "Ei0KKwHR7YpvbWTX4h/dD+lo5Cr8bQ9lwqLgkQ=="
ANSWER = (thought("Weighing it.", SIGNATURE), text("It is sunny."), text("", TEXT_SIGNATURE))


def upstream_model(model: str) -> str:
    return "gemini-2.5-flash" if model.startswith("pooled") else model


def next_turn(gateway: Gateway, server: Upstream, model: str, content: list[dict[str, Any]],
              results: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Send the answer back as the client would, with a follow-up; the body Gemini got."""
    server.received.clear()
    server.reply = streaming(*chunks(text("Fine."), model=upstream_model(model)))
    history = [*HI, {"role": "assistant", "content": content},
               {"role": "user", "content": results or [{"type": "text", "text": "thanks"}]}]
    with client(gateway).messages.stream(model=model, max_tokens=64, messages=history, tools=WEATHER) as stream:
        assert stream.get_final_text() == "Fine."
    [request] = server.received
    return request.json()


@PATHS
def test_a_streamed_answer_with_its_last_text_signed_ends_with_the_text(gateway, server, model):
    server.reply = streaming(*chunks(*ANSWER, model=upstream_model(model)))
    sequence = stream_events(gateway, model)
    validate(sequence)
    content = accumulated(sequence)["content"]
    assert content == [{"type": "thinking", "thinking": "Weighing it.", "signature": f"gemini-thought:{SIGNATURE}"},
                       {"type": "text", "text": "It is sunny.", "citations": None}]  # the last block: what `claude -p` prints
    assert next_turn(gateway, server, model, content)["contents"][1] == {"role": "model", "parts": [
        {"text": "Weighing it.", "thought": True, "thoughtSignature": SIGNATURE}, {"text": "It is sunny."}]}


@PATHS
def test_a_whole_answer_with_its_last_text_signed_carries_the_signature_before_the_text(gateway, server, model):
    server.reply = whole(response(*ANSWER, model=upstream_model(model)))
    answer = client(gateway).messages.create(model=model, max_tokens=64, messages=HI, timeout=30)
    content = [b.model_dump(exclude_unset=True) for b in answer.content]
    assert content == [{"type": "thinking", "thinking": "Weighing it.", "signature": f"gemini-thought:{SIGNATURE}"},
                       {"type": "thinking", "thinking": "", "signature": f"gemini-next:{TEXT_SIGNATURE}"},
                       {"type": "text", "text": "It is sunny.", "citations": None}]
    assert next_turn(gateway, server, model, content)["contents"][1] == {"role": "model", "parts": [
        {"text": "Weighing it.", "thought": True, "thoughtSignature": SIGNATURE},
        {"text": "It is sunny.", "thoughtSignature": TEXT_SIGNATURE}]}


@PATHS
def test_gemini_call_ids_come_back_on_the_call_and_its_response(gateway, server, model):
    server.reply = streaming(*chunks(call("get_weather", {"city": "Paris"}, CALL_SIGNATURE, id="w8fk2"),
                                     call("get_weather", {"city": "Rome"}, id="w8fk3"), model=upstream_model(model)))
    with client(gateway).messages.stream(model=model, max_tokens=64, messages=HI, tools=WEATHER) as stream:
        first = stream.get_final_message()
    content = [b.model_dump(exclude_unset=True) for b in first.content]
    assert [b.get("id") for b in content] == [None, "gemini_w8fk2", "gemini_w8fk3"]
    results = [{"type": "tool_result", "tool_use_id": "gemini_w8fk2", "content": "Sunny"},
               {"type": "tool_result", "tool_use_id": "gemini_w8fk3", "content": "Rain"}]
    contents = next_turn(gateway, server, model, content, results)["contents"]
    assert contents[1:3] == [
        {"role": "model", "parts": [
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}, "id": "w8fk2"}, "thoughtSignature": CALL_SIGNATURE},
            {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}, "id": "w8fk3"}}]},
        {"role": "user", "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"output": "Sunny"}, "id": "w8fk2"}},
            {"functionResponse": {"name": "get_weather", "response": {"output": "Rain"}, "id": "w8fk3"}}]},
    ]  # fmt: skip


def image(url: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                         {"type": "image", "source": {"type": "url", "url": url}}]}]


@PATHS
def test_an_image_url_reaches_gemini_as_file_data(gateway, server, model):
    url = "https://upload.example.org/photos/cat.webp?w=800"
    answer = client(gateway).messages.create(model=model, max_tokens=64, messages=image(url), timeout=30)
    assert answer.content[0].text == GREETING
    [request] = server.received
    assert request.json()["contents"] == [{"role": "user", "parts": [
        {"text": "What is this?"}, {"fileData": {"mimeType": "image/webp", "fileUri": url}}]}]


@PATHS
@pytest.mark.parametrize("stream", [False, True])
def test_an_image_url_gemini_cannot_fetch_is_a_400_naming_the_field(gateway, server, model, stream):
    answer = httpx.post(f"{gateway.url}/v1/messages", headers={"x-api-key": CLIENT_KEY}, timeout=15, json={
        "model": model, "max_tokens": 16, "stream": stream, "messages": image("http://127.0.0.1:9/cat.png")})
    assert (answer.status_code, answer.json()) == (400, {"type": "error", "error": {
        "type": "invalid_request_error",
        "message": "messages[0].content[1].source.url: Gemini fetches only https URLs, not 'http://127.0.0.1:9/cat.png'; "
                   "give an https URL or send the image as base64"}})  # fmt: skip
    assert not server.received  # nothing was sent, and nothing fetched

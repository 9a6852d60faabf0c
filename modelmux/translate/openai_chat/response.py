"""OpenAI Chat Completions answer → Anthropic message (whole JSON bodies). Pure."""

from __future__ import annotations

import json
import logging
from typing import Any

from modelmux.errors import GatewayError, broken_answer, error_type_for, untranslatable
from modelmux.translate import messages, tool_names
from modelmux.translate.anthropic_side import Context, bad_arguments, tool_input
from modelmux.translate.openai_chat import google
from modelmux.translate.openai_side import STATUS_OF_TYPE, disjoint_usage

logger = logging.getLogger(__name__)

# The finish_reason values the OpenAI-compatible APIs document, as Anthropic's stop
# reasons: OpenAI's five (its Chat Completions reference; `function_call` is its
# deprecated functions API), Together's `eos` (the end-of-sequence token), Mistral's
# `model_length` (its ChatCompletionChoice: the model's context filled up), and z.ai's
# `sensitive` (its safety review stopped the answer) and `model_context_window_exceeded`
# (as the clients of z.ai's API list its values; Anthropic has the same stop reason).
STOP_REASONS = {
    "stop": "end_turn",
    "eos": "end_turn",
    "length": "max_tokens",
    "model_length": "model_context_window_exceeded",
    "model_context_window_exceeded": "model_context_window_exceeded",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
    "sensitive": "refusal",
}
CALLS = ("tool_calls", "function_call")  # finish reasons that say the model called tools
# Those that say the answer failed mid-way: OpenRouter's and Mistral's `error`, vLLM's
# `error`, `abort` and `repetition` (its FinishReason: it stopped a model repeating
# itself), SGLang's `abort`, DeepSeek's `insufficient_system_resource`, z.ai's
# `network_error`. A value none of them documents is an error too: what it means for
# the answer is unknown, and every value added so far beyond OpenAI's said a failure.
FAILED = ("error", "abort", "repetition", "insufficient_system_resource", "network_error")
# Which stop sequence matched, where an upstream says: vLLM's `stop_reason`, SGLang's
# `matched_stop` (a string; a number is a stop token, not a sequence).
MATCHED_STOP = ("stop_reason", "matched_stop")
# Reasoning text comes as `reasoning_content` (DeepSeek, Kimi, GLM, vLLM) or
# `reasoning` (OpenRouter, newer vLLM).
REASONING_FIELDS = ("reasoning_content", "reasoning")
LEGACY_INDEX = -1  # a legacy function call's place among the answer's tool calls (those count from 0)
UNREPLAYED = "a thinking part's signature is not kept: modelmux replays no reasoning state to Chat Completions"


def stop_reason(finish: str | None, called_tools: bool) -> str:
    # Several upstreams answer tool calls with finish_reason "stop".
    if called_tools and finish in (None, "stop"):
        return "tool_use"
    return STOP_REASONS.get(finish or "stop", "end_turn")


def stop_of(finish: str | None, called_tools: bool, refused: bool, matched: str | None) -> tuple[str, str | None]:
    """stop_reason and stop_sequence: a refusal whatever the finish, as Anthropic says
    it; the stop sequence the upstream says it stopped at."""
    if refused:
        return "refusal", None
    if matched is not None and finish == "stop" and not called_tools:
        return "stop_sequence", matched
    return stop_reason(finish, called_tools), None


def matched_stop(choice: dict[str, Any]) -> str | None:
    found = next((choice[f] for f in MATCHED_STOP if isinstance(choice.get(f), str) and choice[f]), None)
    return found if choice.get("finish_reason") == "stop" else None


def contradiction(finish: str | None, called_tools: bool) -> str | None:
    """Why an answer that finished this way is no answer: it failed, or it claims tool
    calls that never came (a call the client would never see)."""
    if finish in FAILED:
        return f"it ended with finish_reason '{finish}'"
    if finish in CALLS and not called_tools:
        return f"it finished for tool calls (finish_reason '{finish}') but made none"
    if finish is not None and not (isinstance(finish, str) and finish in STOP_REASONS):
        return f"it ended with finish_reason {str(finish)[:80]!r}, which no API modelmux speaks to defines"
    return None


def error_of(error: dict[str, Any]) -> GatewayError:
    """An OpenAI-style error object (a body, an event in a stream) as the client's error."""
    code = error.get("code")
    status = code if isinstance(code, int) else STATUS_OF_TYPE.get(str(error.get("type") or code), 500)
    message = str(error.get("message") or error)
    return GatewayError(status, message, error_type_for(status), code=code if isinstance(code, str) else None)


def usage(chat_usage: dict[str, Any] | None, tier: Any = None) -> dict[str, Any]:
    """`tier`: the answer's service_tier, which only a whole answer gives before the end."""
    chat_usage = chat_usage or {}
    return disjoint_usage(chat_usage.get("prompt_tokens"), chat_usage.get("completion_tokens"),
                          chat_usage.get("prompt_tokens_details"), chat_usage.get("completion_tokens_details"), tier)


def reasoning_of(message: dict[str, Any]) -> str:
    return next((message[f] for f in REASONING_FIELDS if isinstance(message.get(f), str) and message[f]), "")


def tool_use(call: dict[str, Any], context: Context) -> dict[str, Any]:
    """A whole answer's tool call; GatewayError when its arguments are not a JSON object,
    so the tool_use input would not be what the model called with."""
    function = call.get("function") or {}
    name = function.get("name") or ""
    name = context.tool_names.get(name, name)
    arguments = function.get("arguments") or ""
    if not isinstance(arguments, str):  # a few servers send an object
        arguments = json.dumps(arguments, ensure_ascii=False)
    found = tool_input(arguments)
    if found is None:
        raise broken_answer(bad_arguments(name, arguments))
    return messages.tool_use_block(tool_names.client_id(call.get("id")), name, found)


def legacy_call(function_call: Any) -> dict[str, Any] | None:
    """OpenAI's deprecated functions API answers a call as `function_call: {name,
    arguments}` (on the message, or streamed on the delta like a tool call's
    `function`), one per answer and without an id; some servers still answer so when
    sent `tools`. It is a tool call all the same, held to the same exactness."""
    return {"index": LEGACY_INDEX, "function": function_call} if isinstance(function_call, dict) else None


def content_pieces(content: Any) -> list[tuple[str, str]]:
    """A message's or a delta's `content` as ("text" | "thinking" | "signature", text)
    pieces, in order. Most servers send a string; Mistral (its API's ContentChunk) sends
    a list of chunks when its reasoning models think: `text` chunks, and `thinking`
    chunks of text chunks whose `signature` serves to replay the reasoning, which
    modelmux does not do (the caller logs it). Raises GatewayError for what an
    Anthropic message cannot hold (an image, a document, a reference) or not content."""
    if content is None or isinstance(content, str):
        return [("text", content)] if content else []
    if not isinstance(content, list):
        raise broken_answer(f"its content is neither text nor a list of parts: {json.dumps(content)[:80]}")
    pieces: list[tuple[str, str]] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            pieces.append(("text", part["text"]))
        elif kind == "thinking" and isinstance(thoughts := part.get("thinking"), (str, list)):
            for thought in [{"type": "text", "text": thoughts}] if isinstance(thoughts, str) else thoughts:
                if not (isinstance(thought, dict) and thought.get("type") == "text" and isinstance(thought.get("text"), str)):
                    raise untranslatable(f"a thinking part of type {_type_of(thought)}")
                pieces.append(("thinking", thought["text"]))
            if isinstance(part.get("signature"), str) and part["signature"]:
                pieces.append(("signature", part["signature"]))
        else:
            raise untranslatable(f"a content part of type {_type_of(part)}")
    return pieces


def _type_of(part: Any) -> str:
    kind = part.get("type") if isinstance(part, dict) else None
    return repr(kind[:40]) if isinstance(kind, str) else f"{type(part).__name__} (no type)"


def content_blocks(pieces: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """A whole answer's content pieces as blocks: one per run of a kind."""
    blocks: list[dict[str, Any]] = []
    for kind, text in pieces:
        if kind == "signature" or not text:
            continue
        if blocks and blocks[-1]["type"] == kind:
            blocks[-1][kind] += text
        else:
            blocks.append(messages.text_block(text) if kind == "text" else messages.thinking_block(text))
    return blocks


def from_chat(body: dict[str, Any], context: Context) -> dict[str, Any]:
    """An Anthropic message from a whole Chat Completions response. Raises GatewayError
    when the answer is an error (an HTTP 200 can carry one) or contradicts itself."""
    if isinstance(body.get("error"), dict):
        raise error_of(body["error"])
    if body.get("object") == "error":  # vLLM's older error body
        raise error_of(body)
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise broken_answer("it has no choices")
    choice = choices[0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    if reasoning := reasoning_of(message):
        content.append(messages.thinking_block(reasoning))
    pieces = content_pieces(message.get("content"))
    if any(kind == "signature" for kind, _ in pieces):
        logger.warning(UNREPLAYED)
    content += content_blocks(pieces)
    if message.get("refusal"):
        content.append(messages.text_block(message["refusal"]))
    calls = [call for call in message.get("tool_calls") or () if isinstance(call, dict)]
    if legacy := legacy_call(message.get("function_call")):
        calls.append(legacy)
    finish = choice.get("finish_reason")
    if problem := contradiction(finish, bool(calls)):
        raise broken_answer(problem)
    for call in calls:
        if signature := google.signature_of(call):
            content.append(google.carrier(signature))
        content.append(tool_use(call, context))
    reason, sequence = stop_of(finish, bool(calls), bool(message.get("refusal")), matched_stop(choice))
    counts = usage(body.get("usage"), body.get("service_tier"))
    return messages.message(context.model, content, reason, counts, sequence)

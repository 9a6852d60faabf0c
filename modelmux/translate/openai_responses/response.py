"""OpenAI Responses answer → Anthropic message (whole JSON bodies). Pure.

Output items become blocks in their order: a `reasoning` item a thinking block (its
summary, or the raw reasoning text some servers send, and its encrypted state
packed into the signature), a `message` item a text block, a `function_call` a
tool_use block. Item types an Anthropic client has no block for (web search calls
and other hosted tools, which modelmux never asks for) are skipped, and logged once.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from typing import Any

from modelmux.errors import GatewayError, broken_answer, untranslatable
from modelmux.translate import anthropic_side, messages, tool_names
from modelmux.translate.anthropic_side import bad_arguments, tool_input
from modelmux.translate.openai_responses.reasoning_state import Reasoning, pack
from modelmux.translate.openai_side import STATUS_OF_TYPE, disjoint_usage

logger = logging.getLogger(__name__)

# The Responses API's own error codes (ResponseError.code), on top of the Chat ones.
STATUS_OF_CODE = {**STATUS_OF_TYPE, "vector_store_timeout": 504}
CLIENT_ERRORS = ("invalid_", "image_", "empty_image", "unsupported_", "failed_to_download")
REASONING_PARTS = ("reasoning_text", "text")  # raw reasoning (gpt-oss on vLLM and the like)
PART_SEPARATOR = "\n\n"  # between reasoning summary parts
SKIPPED_ITEM = "skipping %s output items of a Responses answer: modelmux never asks for them"


@dataclass
class Context(anthropic_side.Context):
    """The Context every translation has, and the upstream model that packed reasoning
    signatures are bound to."""

    upstream_model: str = ""  # what the request asked upstream: packed reasoning is bound to it

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def usage(responses_usage: dict[str, Any] | None, tier: Any = None) -> dict[str, Any]:
    """`tier`: the response's service_tier, which only a whole answer gives before the end."""
    responses_usage = responses_usage or {}
    return disjoint_usage(responses_usage.get("input_tokens"), responses_usage.get("output_tokens"),
                          responses_usage.get("input_tokens_details"), responses_usage.get("output_tokens_details"),
                          tier)


# Why a response is incomplete (the Responses API reference, incomplete_details.reason):
# its output limit, or its content filter. An incomplete response that says neither is
# an error: whether it is cut off or withheld, or something else, is unknown.
INCOMPLETE = {"max_output_tokens": "max_tokens", "content_filter": "refusal"}


def stop_reason(response: dict[str, Any], called_tools: bool, refused: bool) -> str:
    if response.get("status") == "incomplete":
        return INCOMPLETE[incomplete_reason(response)]
    if refused:
        return "refusal"
    return "tool_use" if called_tools else "end_turn"


def incomplete_reason(response: dict[str, Any]) -> str:
    """An incomplete response's reason; GatewayError when it is none the API defines."""
    details = response.get("incomplete_details")
    reason = details.get("reason") if isinstance(details, dict) else None
    if reason is None:
        raise broken_answer("it is incomplete and does not say why")
    if not (isinstance(reason, str) and reason in INCOMPLETE):
        raise broken_answer(f"it is incomplete for a reason the Responses API does not define: {str(reason)[:80]!r}")
    return reason


def failure(error: Any) -> GatewayError:
    """An upstream error object (`{code, message}` of a failed response or an error
    event, or `{type, code, message}` of an error body) as the client's error."""
    error = error if isinstance(error, dict) else {}
    status = 500
    for key in (error.get("code"), error.get("type")):
        if isinstance(key, int):
            status = key
            break
        if isinstance(key, str) and key in STATUS_OF_CODE:
            status = STATUS_OF_CODE[key]
            break
    else:
        if str(error.get("code") or "").startswith(CLIENT_ERRORS):
            status = 400
    message = error.get("message") if isinstance(error.get("message"), str) else None
    code = error.get("code") if isinstance(error.get("code"), str) else None
    return GatewayError(status, f"the upstream failed: {message or error.get('code') or 'no reason given'}", code=code)


def check(response: dict[str, Any]) -> None:
    """Raise the client's error when `response` is no answer: a failed or cancelled
    response, or an error body."""
    status = response.get("status")
    if status == "failed" or (status is None and isinstance(response.get("error"), dict)):
        raise failure(response.get("error"))
    if status == "cancelled":
        raise GatewayError(500, "the upstream cancelled the response")
    if not isinstance(response.get("output"), list):
        raise broken_answer("it has no output")


def reasoning_texts(item: dict[str, Any]) -> list[str]:
    summary = [p.get("text") for p in item.get("summary") or () if isinstance(p, dict)]
    raw = [p.get("text") for p in item.get("content") or () if isinstance(p, dict) and p.get("type") in REASONING_PARTS]
    return [text for text in summary + raw if isinstance(text, str) and text]


def signature(item: dict[str, Any], context: Context) -> str:
    """The reasoning item's state for the next turn; "" when there is none to replay."""
    encrypted = item.get("encrypted_content")
    if not (isinstance(encrypted, str) and encrypted):
        return ""
    return pack(Reasoning(str(item.get("id") or ""), encrypted, context.upstream_model))


def message_text(item: dict[str, Any]) -> tuple[str, bool]:
    """A message item's text and whether it is a refusal."""
    parts = [message_part(part) for part in item.get("content") or ()]
    return "".join(text for _, text in parts), any(name == "refusal" for name, _ in parts)


def message_part(part: Any) -> tuple[str, str]:
    """A message item's content part as ("text" | "refusal", its text). The API defines
    output_text and refusal parts (ResponseOutputMessage.content); a part with neither
    text nor a refusal (audio, say) is one an Anthropic message cannot hold."""
    if isinstance(part, dict) and part.get("type") == "refusal" and isinstance(part.get("refusal"), str):
        return "refusal", part["refusal"]
    if isinstance(part, dict) and isinstance(part.get("text"), str):
        return "text", part["text"]
    kind = part.get("type") if isinstance(part, dict) else None
    raise untranslatable(f"a message part of type {str(kind)[:40]!r}")


def tool_use_start(item: dict[str, Any], context: Context) -> dict[str, Any]:
    """A function_call item's tool_use block, without input. Its id is the call_id,
    which the call's output refers to (the item's own `fc_` id never comes back)."""
    name = item.get("name") or ""
    return messages.tool_use_block(tool_names.client_id(item.get("call_id") or item.get("id")),
                                   context.tool_names.get(name, name), {})


def arguments_of(item: dict[str, Any]) -> str:
    """A function call's arguments as JSON text (a few servers send an object)."""
    arguments = item.get("arguments")
    if isinstance(arguments, str):
        return arguments
    return "" if arguments is None else json.dumps(arguments, ensure_ascii=False)


def from_responses(body: dict[str, Any], context: Context) -> dict[str, Any]:
    """An Anthropic message from a whole Responses answer. Raises GatewayError when the
    answer is a failure."""
    check(body)
    content: list[dict[str, Any]] = []
    called_tools = refused = False
    skipped: set[str] = set()
    for item in body.get("output") or ():
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "reasoning":
            thinking, sealed = PART_SEPARATOR.join(reasoning_texts(item)), signature(item, context)
            if thinking or sealed:
                content.append(messages.thinking_block(thinking, sealed))
        elif kind == "message":
            text, refusal = message_text(item)
            refused = refused or refusal
            if text:
                content.append(messages.text_block(text))
        elif kind == "function_call":
            called_tools = True
            start, arguments = tool_use_start(item, context), arguments_of(item)
            if (found := tool_input(arguments)) is None:
                raise broken_answer(bad_arguments(start["name"], arguments))
            content.append({**start, "input": found})
        elif str(kind) not in skipped:
            skipped.add(str(kind))
            logger.warning(SKIPPED_ITEM, str(kind)[:80])
    reason = stop_reason(body, called_tools, refused)
    return messages.message(context.model, content, reason, usage(body.get("usage"), body.get("service_tier")))

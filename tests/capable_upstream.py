"""A fake provider whose capabilities are flags, for `modelmux check --deep`: it answers
OpenAI Chat (`/chat/completions`), Responses (`/responses`), Gemini (`:streamGenerateContent`)
and Anthropic (`/v1/messages`) requests, and their model lists, as a provider with those
capabilities would, in each protocol's own shapes (the other fakes' builders). What it
refuses it refuses with the provider's own words, which `--deep` reads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

import gemini_upstream
import openai_upstream
import responses_upstream
from upstream import Behaviour, Hang, Received, Reply, Stream, sse

CALLS = [("get_weather", {"city": "Paris"}), ("get_time", {"city": "Tokyo"})]
ANSWERS = {"image": "Red.", "document": "PELICAN", "thinking": "391", "results": "Paris is sunny; Tokyo 14:05."}
REASONED = "17 × 23: 17 × 20 is 340, plus 51."
SIGNATURE = "EqQBCkgIARABGAIiQ-fake-anthropic-signature"


@dataclass
class Capable:
    usage: Literal["always", "asked", "never"] = "always"  # asked: only with stream_options.include_usage
    refuses: frozenset[str] = frozenset()  # request fields answered with a 400 naming them
    max_output: int | None = None  # a larger max-tokens value: a 400 naming this limit
    context: int | None = None  # a larger one: a 400 naming this context window (vLLM's words)
    reasoning: str | None = None  # Chat: the field reasoning comes in, or "<think>"; others: any value
    parallel: bool = True
    ids: Literal["call", "kimi", "none", "same"] = "call"
    wants_reasoning_back: bool = False  # Chat: a tool-call turn sent back without its reasoning is a 400
    images: bool = True
    documents: bool = True
    stall: frozenset[str] = frozenset()  # the kinds of request (kind()) it never answers
    fail: frozenset[str] = frozenset()  # the kinds it answers with a 500
    listed: dict[str, Any] = field(default_factory=dict)  # what its model list says of each model

    def reply(self, request: Received) -> Behaviour:
        path = request.path.split("?")[0]
        if request.method == "GET":
            return self._list(path)
        body = request.json()
        protocol = ("openai-chat" if path.endswith("/chat/completions") else "openai-responses"
                    if path.endswith("/responses") else "gemini" if path.startswith("/v1beta/") else "anthropic")
        what = kind(protocol, body)
        if what in self.stall:
            return Hang()
        if what in self.fail:
            return openai_upstream.error_reply(500, "The server had an error while processing your request.",
                                               type="server_error")
        return {"openai-chat": self._chat, "openai-responses": self._responses, "gemini": self._gemini,
                "anthropic": self._anthropic}[protocol](body, what, request)  # fmt: skip

    def call_id(self, n: int, name: str) -> str | None:
        return {"call": f"call_{n}a1b2c3d4e5f6", "kimi": f"functions.{name}:{n}", "none": None,
                "same": "call_same"}[self.ids]  # fmt: skip

    # -- OpenAI Chat ----------------------------------------------------------------------

    def _chat(self, body: dict[str, Any], what: str, request: Received) -> Behaviour:
        for name in sorted(self.refuses):
            if name in body:
                return openai_upstream.error_reply(400, f"Unsupported parameter: '{name}' is not supported with "
                                                        "this model.", code="unsupported_parameter")  # fmt: skip
        if refusal := self._attachments(what, "image_url is only supported by certain models.",
                                        "Invalid value: 'file'. Supported values are: 'text' and 'image_url'."):
            return openai_upstream.error_reply(400, refusal)
        asked = body.get("max_completion_tokens") or body.get("max_tokens") or 0
        if self.max_output is not None and asked > self.max_output:
            return openai_upstream.error_reply(400, "Invalid max_tokens value, the valid range of max_tokens is "
                                                    f"[1, {self.max_output}]")  # fmt: skip
        if self.context is not None and asked > self.context:
            return openai_upstream.error_reply(400, f"This model's maximum context length is {self.context} tokens. "
                                                    f"However, you requested {asked + 12} tokens (12 in the messages, "
                                                    f"{asked} in the completion).", code="context_length_exceeded")
        if self.wants_reasoning_back:
            for at, message in enumerate(body["messages"]):
                if message.get("tool_calls") and "reasoning_content" not in message:
                    return openai_upstream.error_reply(400, f"Missing `reasoning_content` field in the assistant "
                                                            f"message at message index {at}. For more information, "
                                                            "please refer to https://api-docs.deepseek.com/guides/"
                                                            "thinking_mode#tool-calls")  # fmt: skip
        usage = openai_upstream.USAGE if self.usage == "always" or (
            self.usage == "asked" and (body.get("stream_options") or {}).get("include_usage")) else None
        chunks = [openai_upstream.chunk({"role": "assistant", "content": ""})]
        if self.reasoning == "<think>":
            chunks.append(openai_upstream.chunk({"content": f"<think>{REASONED}</think>"}))
        elif self.reasoning:
            chunks.append(openai_upstream.chunk({self.reasoning: REASONED}))
        if what == "tools":
            for n, (name, arguments) in enumerate(CALLS[: 2 if self.parallel else 1]):
                call = openai_upstream.tool_call(self.call_id(n, name), name, arguments, index=n)
                chunks.append(openai_upstream.chunk({"tool_calls": [call]}))
            chunks.append(openai_upstream.chunk({}, finish="tool_calls"))
        else:
            chunks += [openai_upstream.chunk({"content": ANSWERS.get(what, "OK")}), openai_upstream.chunk({}, "stop")]
        if usage is not None:
            chunks.append(openai_upstream.chunk(usage=usage, choices=False))
        return Stream(openai_upstream.sse(chunks))

    # -- OpenAI Responses ---------------------------------------------------------------

    def _responses(self, body: dict[str, Any], what: str, request: Received) -> Behaviour:
        reasoning = body.get("reasoning") or {}
        if "reasoning" in self.refuses and reasoning:
            return openai_upstream.error_reply(400, "Unsupported parameter: 'reasoning.effort' is not supported "
                                                    "with this model.", code="unsupported_parameter")  # fmt: skip
        if "summary" in self.refuses and reasoning.get("summary"):
            return openai_upstream.error_reply(400, "Your organization must be verified to generate reasoning "
                                                    "summaries.", code="unsupported_value")  # fmt: skip
        if refusal := self._attachments(what, "Invalid content: input_image is not supported by this model.",
                                        "Invalid content: input_file is not supported by this model."):
            return openai_upstream.error_reply(400, refusal)
        if self.max_output is not None and body.get("max_output_tokens", 0) > self.max_output:
            return openai_upstream.error_reply(400, f"max_output_tokens must be less than or equal to "
                                                    f"{self.max_output}.")  # fmt: skip
        output = []
        if self.reasoning and reasoning:
            summary = ("Multiplying 17 by 23.",) if reasoning.get("summary") else ()
            output.append(responses_upstream.reasoning(*summary))
        if what == "tools":
            output += [responses_upstream.function_call(self.call_id(n, name) or "", name, arguments, id=f"fc_{n}")
                       for n, (name, arguments) in enumerate(CALLS[: 2 if self.parallel else 1])]  # fmt: skip
        else:
            output.append(responses_upstream.message(ANSWERS.get(what, "OK")))
        usage = responses_upstream.usage(reasoning=40 if self.reasoning else 0) if self.usage != "never" else None
        final = responses_upstream.response(output, usage=usage)
        return Stream(responses_upstream.sse(responses_upstream.events(output, final)))

    # -- Gemini -------------------------------------------------------------------------

    def _gemini(self, body: dict[str, Any], what: str, request: Received) -> Behaviour:
        config = body.get("generationConfig") or {}
        if self.max_output is not None and config.get("maxOutputTokens", 0) > self.max_output:
            value = config["maxOutputTokens"]
            return gemini_upstream.error_reply(400, f"Unable to submit request because it has a maxOutputTokens "
                                                    f"value of {value} but the supported range is from 1 (inclusive) "
                                                    f"to {self.max_output + 1} (exclusive). Update the value and try "
                                                    "again.", "INVALID_ARGUMENT")  # fmt: skip
        if refusal := self._attachments(what, "Unsupported MIME type: image/png",
                                        "Unsupported MIME type: application/pdf"):
            return gemini_upstream.error_reply(400, refusal, "INVALID_ARGUMENT")
        parts = []
        thoughts = (config.get("thinkingConfig") or {}).get("includeThoughts")
        if self.reasoning and thoughts:
            parts.append(gemini_upstream.thought(REASONED))
        if what == "tools":
            parts += [gemini_upstream.call(name, arguments, id=self.call_id(n, name))
                      for n, (name, arguments) in enumerate(CALLS[: 2 if self.parallel else 1])]  # fmt: skip
        else:
            parts.append(gemini_upstream.text(ANSWERS.get(what, "OK")))
        usage = gemini_upstream.usage(thoughts=30 if self.reasoning and thoughts else None)
        return Stream(gemini_upstream.sse(gemini_upstream.chunks(*parts, usage=usage)))

    # -- Anthropic ----------------------------------------------------------------------

    def _anthropic(self, body: dict[str, Any], what: str, request: Received) -> Behaviour:
        model = body["model"]
        if self.max_output is not None and body["max_tokens"] > self.max_output:
            return _anthropic_error(f"max_tokens: {body['max_tokens']} > {self.max_output}, which is the maximum "
                                    f"allowed number of output tokens for {model}")  # fmt: skip
        if refusal := self._attachments(what, "This model does not support image input.",
                                        "This model does not support PDF input."):
            return _anthropic_error(refusal)
        blocks: list[dict[str, Any]] = []
        if self.reasoning and (body.get("thinking") or {}).get("type") == "enabled":
            blocks.append({"type": "thinking", "thinking": REASONED, "signature": SIGNATURE})
        if what == "tools":
            blocks += [{"type": "tool_use", "id": self.call_id(n, name), "name": name, "input": arguments}
                       for n, (name, arguments) in enumerate(CALLS[: 2 if self.parallel else 1])]  # fmt: skip
        else:
            blocks.append({"type": "text", "text": ANSWERS.get(what, "OK")})
        return Stream(_anthropic_events(model, blocks, "tool_use" if what == "tools" else "end_turn",
                                        self.usage != "never"))  # fmt: skip

    # -- shared -------------------------------------------------------------------------

    def _attachments(self, what: str, image: str, document: str) -> str | None:
        if what == "image" and not self.images:
            return image
        if what == "document" and not self.documents:
            return document
        return None

    def _list(self, path: str) -> Reply:
        """Every protocol's model list in its own shape, with what `listed` says of each model."""
        if path.startswith("/v1beta/"):
            models = [{"name": f"models/{name}", **facts} for name, facts in self.listed.items()]
            return gemini_upstream.json_reply({"models": models})
        return openai_upstream.json_reply({"data": [{"id": name, **facts} for name, facts in self.listed.items()]})


def kind(protocol: str, body: dict[str, Any]) -> str:
    """Which of `--deep`'s questions a request asks, read as a provider reads it: tool
    results, tools, an image, a PDF, an absurd output limit, thinking, or nothing else."""
    text = json.dumps(body)
    if any(marker in text for marker in ('"role": "tool"', "function_call_output", "functionResponse", "tool_result")):
        return "results"
    if body.get("tools"):
        return "tools"
    if any(marker in text for marker in ("image_url", "input_image", "image/png")):
        return "image"
    if any(marker in text for marker in ('"file"', "input_file", "application/pdf")):
        return "document"
    config = body.get("generationConfig") or {}
    limit = body.get("max_tokens") or body.get("max_completion_tokens") or body.get("max_output_tokens") or \
        config.get("maxOutputTokens") or 0
    if limit >= 1_000_000:
        return "limit"
    return "thinking" if "17 \\u00d7 23" in text else "plain"


def _anthropic_error(message: str) -> Reply:
    error = {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
    return Reply(400, json.dumps(error).encode())


def _anthropic_events(model: str, blocks: list[dict[str, Any]], stop: str, usage: bool) -> list[bytes]:
    start = {"id": "msg_capable_1", "type": "message", "role": "assistant", "model": model, "content": [],
             "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 12, "output_tokens": 1}}
    events = [sse("message_start", {"type": "message_start", "message": start})]
    for index, block in enumerate(blocks):
        empty = {"tool_use": {**block, "input": {}}, "thinking": {"type": "thinking", "thinking": ""},
                 "text": {"type": "text", "text": ""}}[block["type"]]  # fmt: skip
        events.append(sse("content_block_start",
                          {"type": "content_block_start", "index": index, "content_block": empty}))
        delta = {"tool_use": {"type": "input_json_delta", "partial_json": json.dumps(block.get("input"))},
                 "thinking": {"type": "thinking_delta", "thinking": block.get("thinking")},
                 "text": {"type": "text_delta", "text": block.get("text")}}[block["type"]]  # fmt: skip
        events.append(sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}))
        if block["type"] == "thinking":
            events.append(sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                                      "delta": {"type": "signature_delta", "signature": SIGNATURE}}))
        events.append(sse("content_block_stop", {"type": "content_block_stop", "index": index}))
    delta: dict[str, Any] = {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}}
    if usage:
        delta["usage"] = {"output_tokens": 9}
    return events + [sse("message_delta", delta), sse("message_stop", {"type": "message_stop"})]

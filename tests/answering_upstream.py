"""A fake upstream that answers what it is asked, in each protocol modelmux translates
(Chat Completions, Responses, Gemini): a call to the first tool offered when there
are tools, its reasoning first when the request asks the model to reason, text
otherwise; whole or streamed as asked. Its usage reports everything the protocol can
(cached input, reasoning tokens, the service tier), so the translation of each count
shows. For checkers of the client's side, such as llm-comply, that send requests of
their own."""

from __future__ import annotations

from typing import Any

import gemini_upstream as gem
import openai_upstream as chat
import responses_upstream as resp
from upstream import Behaviour, Received, Stream

TEXT = "Hello from a fake model that answers what it is asked."
REASONING = "The user wants an answer; the tools say how."
ARGUMENTS = {"location": "San Francisco"}
CALL_ID = "call_compliance_1"
# Counts every protocol reports: 40 input tokens of which 16 came from the cache, and
# output of which 6 were reasoning when the model reasoned.
PROMPT, CACHED, OUTPUT, THOUGHTS = 40, 16, 15, 6


def answering(request: Received) -> Behaviour:
    path = request.path.split("?")[0]
    if path.endswith("/chat/completions"):
        return _chat(request.json())
    if path.endswith("/responses"):
        return _responses(request.json())
    if gem.model_of(request) is not None:
        return _gemini(request.json(), gem.streamed(request))
    raise AssertionError(f"not a request this fake answers: {request.method} {request.path}")


def _chat(body: dict[str, Any]) -> Behaviour:
    tools = [t["function"]["name"] for t in body.get("tools") or ()]
    reasoning = REASONING if "reasoning_effort" in body else None
    usage = {**chat.usage(PROMPT, OUTPUT, cached=CACHED),
             "completion_tokens_details": {"reasoning_tokens": THOUGHTS if reasoning else 0}}
    model = body["model"]
    if body.get("stream"):
        pieces = (chat.tool_call_chunks(CALL_ID, tools[0], ARGUMENTS, model, usage, reasoning) if tools
                  else chat.text_chunks(TEXT, usage=usage, model=model, reasoning=reasoning))
        return Stream(chat.sse([{**piece, "service_tier": "default"} for piece in pieces]))
    calls = [chat.tool_call(CALL_ID, tools[0], ARGUMENTS)] if tools else None
    answer = chat.completion(None if tools else TEXT, calls, reasoning, "tool_calls" if tools else "stop", usage, model)
    return chat.json_reply({**answer, "service_tier": "default"})


def _responses(body: dict[str, Any]) -> Behaviour:
    tools = [t["name"] for t in body.get("tools") or ()]
    reasoned = "reasoning" in body
    output = [resp.reasoning(REASONING)] if reasoned else []
    output.append(resp.function_call(CALL_ID, tools[0], ARGUMENTS) if tools else resp.message(TEXT))
    usage = resp.usage(PROMPT, OUTPUT, CACHED, THOUGHTS if reasoned else 0)
    answer = {**resp.response(output, usage=usage, model=body["model"]), "service_tier": "default"}
    if body.get("stream"):
        return Stream(resp.sse(resp.events(output, answer, model=body["model"])))
    return resp.json_reply(answer)


def _gemini(body: dict[str, Any], streamed: bool) -> Behaviour:
    declared = [d["name"] for tool in body.get("tools") or () for d in tool.get("functionDeclarations") or ()]
    thinks = bool(((body.get("generationConfig") or {}).get("thinkingConfig") or {}).get("includeThoughts"))
    parts = [gem.thought(REASONING)] if thinks else []
    parts.append(gem.call(declared[0], ARGUMENTS, id=CALL_ID) if declared else gem.text(TEXT))
    usage = gem.usage(PROMPT, OUTPUT - (THOUGHTS if thinks else 0), CACHED, THOUGHTS if thinks else None)
    if streamed:
        return Stream(gem.sse(gem.chunks(*parts, usage=usage)))
    return gem.json_reply(gem.response(*parts, usage=usage))

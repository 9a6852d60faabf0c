"""Anthropic Messages request → Gemini `generateContent` request. Pure.

The upstream body is built from the fields Gemini knows, never copied from the
client's, so Anthropic-only fields (`cache_control`, `metadata`, `context_management`,
server tools) cannot leak. The model and streaming are in the URL (`path`), not in
the body.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from modelmux.translate import repeated, thought_signatures, tool_names
from modelmux.translate.anthropic_side import (
    BILLING_LINE,
    CONTINUED,
    DOCUMENT_OMITTED,
    IMAGE_BELOW,
    IMAGE_OMITTED,
    NO_RESULT,
    Context,
)
from modelmux.config.types import Shape
from modelmux.translate.effort import Effort
from modelmux.translate.gemini import calls, files, schema
from modelmux.translate.gemini.thinking import thinking_config, uses_levels

ENDPOINT = "/models/{model}:generateContent"
STREAM_ENDPOINT = "/models/{model}:streamGenerateContent?alt=sse"
MAX_STOP_SEQUENCES = 5  # Gemini's limit
NO_CONTENT = "(no content)"  # Claude Code's stand-in text for an empty assistant message
# Gemini function names: a letter or underscore first, then letters, digits, _ . : -, 64 at most.
_FUNCTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]*")
_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_.:-]")
CHOICES = {"auto": "AUTO", "any": "ANY", "tool": "ANY", "none": "NONE"}

Part = dict[str, Any]


def path(model: str, stream: bool) -> str:
    """The request path below the API root (e.g. https://generativelanguage.googleapis.com/v1beta)."""
    return (STREAM_ENDPOINT if stream else ENDPOINT).replace("{model}", model)


def to_gemini(body: dict[str, Any], shape: Shape, model: str, effort: Effort | None = None) -> dict[str, Any]:
    """The generateContent body for an Anthropic `body` sent to `model`; `effort`, when
    given, overrides the thinking the client asked for (see thinking.py)."""
    gemini: dict[str, Any] = {"contents": History(shape, model).contents(body.get("messages") or ())}
    if uses_levels(model):
        _stand_in_signatures(gemini["contents"])
    if system := _system(body):
        gemini["systemInstruction"] = {"parts": system}
    if tools := repeated.section(body.get("tools") or (), _tools):
        gemini["tools"] = tools
        if config := _tool_config(body.get("tool_choice")):
            gemini["toolConfig"] = config
    if generation := _generation_config(body, shape, model, effort):
        gemini["generationConfig"] = generation
    return gemini


def function_name(name: str) -> str:
    """A function name Gemini accepts: `name` itself when it can be, else a readable
    prefix and a hash of the whole name (so two names never meet)."""
    if _FUNCTION_NAME.fullmatch(name):
        return tool_names.shorten(name)
    clean = _NOT_IN_NAME.sub("_", name)
    if not _FUNCTION_NAME.match(clean):
        clean = "_" + clean
    return f"{clean[:55]}_{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def restore_map(names: list[str]) -> dict[str, str]:
    """function name → the client's tool name, for the names that had to change."""
    return {function_name(name): name for name in names if function_name(name) != name}


def context_for(body: dict[str, Any], model: str) -> Context:
    """What the answer's translation needs: the model name the client sees, and the
    tool names to restore."""
    names = [t["name"] for t in body.get("tools") or () if isinstance(t, dict) and isinstance(t.get("name"), str)]
    return Context(model=model, tool_names=restore_map(names))


def _generation_config(body: dict[str, Any], shape: Shape, model: str, effort: Effort | None) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if isinstance(body.get("max_tokens"), int):
        limit = shape.max_tokens_limit
        config["maxOutputTokens"] = min(body["max_tokens"], limit) if limit else body["max_tokens"]
    for ours, theirs in (("temperature", "temperature"), ("top_p", "topP"), ("top_k", "topK")):
        if body.get(ours) is not None:
            config[theirs] = body[ours]
    if stops := [s for s in body.get("stop_sequences") or () if isinstance(s, str) and s]:
        config["stopSequences"] = stops[:MAX_STOP_SEQUENCES]
    if thinking := thinking_config(body, model, effort):
        config["thinkingConfig"] = thinking
    return config


def _system(body: dict[str, Any]) -> list[Part]:
    """System text blocks, then any `system` messages (Gemini has one system instruction)."""
    texts = [b.get("text") for b in _blocks(body.get("system")) if b.get("type") == "text"]
    for message in body.get("messages") or ():
        if isinstance(message, dict) and message.get("role") == "system":
            texts += [b.get("text") for b in _blocks(message.get("content")) if b.get("type") == "text"]
    return [{"text": t} for t in texts if isinstance(t, str) and t.strip() and not t.startswith(BILLING_LINE)]


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content or () if isinstance(b, dict)] if isinstance(content, list) else []


# -- contents ---------------------------------------------------------------------


@dataclass(frozen=True)
class Turn:
    """One message as Gemini reads it; shared between requests (a conversation's earlier
    turns come again with each one), so never changed: `merged` makes a new one."""

    role: str  # "user" or "model"
    parts: list[Part] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)  # model: the tool_use ids of its calls, in order
    names: dict[str, str] = field(default_factory=dict)  # model: tool_use id → the function name it was sent as
    results: dict[str, list[Part]] = field(default_factory=dict)  # user: tool_use id → functionResponse, attachments

    def merged(self, other: Turn) -> Turn:
        return Turn(self.role, self.parts + other.parts, self.calls + other.calls, {**self.names, **other.names},
                    {**self.results, **other.results})


Refs = tuple[tuple[str, "str | None"], ...]  # a user message's results: (tool_use id, the name its call was sent as)


# A message's Turn, by the message (repeated.Kept): ("model", id) or ("user", id, shape,
# model, the names its results' calls were sent as).
_TURNS: repeated.Kept[Turn] = repeated.Kept()


class History:
    """Anthropic messages → Gemini contents: `user`/`model` turns that alternate, each
    model turn's function calls answered by the next user turn, in call order.
    Gemini rejects a call turn whose answers do not match it one for one. Each message's
    Turn and each run of turns' content are built once (repeated): a conversation's
    earlier turns come again with every request."""

    def __init__(self, shape: Shape, model: str) -> None:
        self.shape = shape
        self.model = model
        self.names: dict[str, str] = {}  # tool_use id → the function name it was sent as

    def contents(self, messages: Any) -> list[dict[str, Any]]:
        runs: list[tuple[str, list[dict[str, Any]], list[Turn], list[Refs]]] = []  # consecutive turns of one role
        for at, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
                continue  # `system` messages went to the system instruction
            refs: Refs = ()
            if message["role"] == "assistant":
                turn = self._model(message)
            else:
                turn, refs = self._user(message, f"messages[{at}].content")
            if not (turn.parts or turn.results):
                continue
            if runs and runs[-1][0] == turn.role:
                runs[-1][1].append(message)
                runs[-1][2].append(turn)
                runs[-1][3].append(refs)
            else:
                runs.append((turn.role, [message], [turn], [refs]))
        return self._paired(runs)

    def _model(self, message: dict[str, Any]) -> Turn:
        turn = _model_turn_of(message)
        self.names.update(turn.names)
        return turn

    def _user(self, message: dict[str, Any], where: str) -> tuple[Turn, Refs]:
        """The message's Turn, and the names its results' calls were sent as (part of its key)."""
        refs = tuple((call_id, self.names.get(call_id)) for call_id in _result_ids(_blocks(message.get("content"))))
        return _user_turn_of(message, where, self.shape, self.model, refs), refs

    def _paired(self, runs: list[tuple[str, list[dict[str, Any]], list[Turn], list[Refs]]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        waiting: tuple[tuple[str, str], ...] = ()  # the calls of the model turn just written, with their names
        for role, messages, turns, refs in runs:
            if role == "model":
                out += repeated.translated(_model_content, tuple(messages))
                merged = _joined(turns)
                waiting = tuple((call_id, merged.names[call_id]) for call_id in merged.calls)
                continue
            out += repeated.translated(_user_content, tuple(messages), waiting, tuple(refs), self.shape, self.model)
            waiting = ()
        if waiting:
            out.append({"role": "user", "parts": _answers(waiting, {})})
        if out and out[0]["role"] == "model":
            out.insert(0, {"role": "user", "parts": [{"text": CONTINUED}]})
        return out


def _joined(turns: list[Turn]) -> Turn:
    joined = turns[0]
    for turn in turns[1:]:
        joined = joined.merged(turn)
    return joined


def _model_content(messages: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    """A run of assistant messages as one model content."""
    return [{"role": "model", "parts": _joined([_model_turn_of(m) for m in messages]).parts}]


def _user_content(messages: tuple[dict[str, Any], ...], waiting: tuple[tuple[str, str], ...], refs: tuple[Refs, ...],
                  shape: Shape, model: str) -> list[dict[str, Any]]:
    """A run of user messages as one user content, the answers to `waiting` first."""
    turns = [_user_turn_of(m, "", shape, model, r) for m, r in zip(messages, refs, strict=True)]
    turn = _joined(turns)
    return [{"role": "user", "parts": _answers(waiting, turn.results) + turn.parts}]


def _model_turn_of(message: dict[str, Any]) -> Turn:
    key = ("model", id(message))
    if (turn := _TURNS.get(key)) is None:
        turn = _model_turn(message)
        _TURNS.put(key, (message,), turn)
    return turn


def _user_turn_of(message: dict[str, Any], where: str, shape: Shape, model: str, refs: Refs) -> Turn:
    key = ("user", id(message), shape, model, refs)
    if (turn := _TURNS.get(key)) is None:
        turn = _user_turn(_blocks(message.get("content")), where, shape, model, refs)
        _TURNS.put(key, (message,), turn)
    return turn


def _model_turn(message: dict[str, Any]) -> Turn:
    """Gemini's signatures go back on the parts they came with (thought_signatures.py);
    thinking signed by anyone else is dropped: Gemini cannot verify it."""
    parts: list[Part] = []
    calls_made: list[str] = []
    names: dict[str, str] = {}
    following: str | None = None  # a signature for the next part
    for block in _blocks(message.get("content")):
        kind = block.get("type")
        part: Part | None = None
        if kind == "thinking":
            carried = thought_signatures.parse(block.get("signature"))
            if carried is None:
                continue
            what, signature = carried
            if what == thought_signatures.THOUGHT:
                parts.append({"text": block.get("thinking") or "", "thought": True, "thoughtSignature": signature})
            elif what == thought_signatures.NEXT:
                following = signature
            elif parts and "thought" not in parts[-1] and "thoughtSignature" not in parts[-1]:
                parts[-1] = {**parts[-1], "thoughtSignature": signature}
        elif kind == "text" and block.get("text") and block["text"] != NO_CONTENT:
            part = {"text": block["text"]}
        elif kind == "tool_use":
            name = function_name(str(block.get("name") or ""))
            call_id = str(block.get("id") or "")
            names[call_id] = name
            calls_made.append(call_id)
            part = {"functionCall": {"name": name, "args": block.get("input") or {}}}
            if (given := calls.gemini_id(call_id)) is not None:
                part["functionCall"]["id"] = given
        if part is not None:
            if following is not None:
                part["thoughtSignature"], following = following, None
            parts.append(part)
    return Turn("model", parts, calls_made, names)


def _result_ids(blocks: list[dict[str, Any]]) -> list[str]:
    """The tool_use ids a user message's results answer, in order."""
    return [str(block.get("tool_use_id") or "") for block in blocks if block.get("type") == "tool_result"]


def _user_turn(blocks: list[dict[str, Any]], where: str, shape: Shape, model: str, refs: Refs) -> Turn:
    """`refs`: the names the calls of its results were sent as (None: a call not in the history)."""
    names = dict(refs)
    parts: list[Part] = []
    results: dict[str, list[Part]] = {}
    for at, block in enumerate(blocks):
        if block.get("type") != "tool_result":
            parts += _parts(block, f"{where}[{at}]", shape, model)
            continue
        call_id = str(block.get("tool_use_id") or "")
        text, attachments = _result(block, f"{where}[{at}].content", shape, model)
        if (name := names.get(call_id)) is not None:
            key = "error" if block.get("is_error") else "output"
            results[call_id] = [_response(call_id, name, {key: text}), *attachments]
        else:  # its call is not in the history (e.g. compacted away): keep it as text
            parts += [{"text": f"[result of tool call {call_id}]\n{text}"}, *attachments]
    return Turn("user", parts, results=results)


def _response(call_id: str, name: str, response: dict[str, str]) -> Part:
    """The functionResponse for a call, with the call's id when Gemini gave it one."""
    answer: dict[str, Any] = {"name": name, "response": response}
    if (given := calls.gemini_id(call_id)) is not None:
        answer["id"] = given
    return {"functionResponse": answer}


def _result(block: dict[str, Any], where: str, shape: Shape, model: str) -> tuple[str, list[Part]]:
    texts: list[str] = []
    attachments: list[Part] = []
    for at, inner in enumerate(_blocks(block.get("content"))):
        for part in _parts(inner, f"{where}[{at}]", shape, model):
            if "text" in part:
                texts.append(part["text"])
            else:
                attachments.append(part)
    text = "\n".join(texts)
    if attachments:
        text = f"{text}\n{IMAGE_BELOW}" if text else IMAGE_BELOW
    return text, attachments


def _parts(block: dict[str, Any], where: str, shape: Shape, model: str) -> list[Part]:
    """`where`: the block's place in the request, for an error about it."""
    kind = block.get("type")
    source = block.get("source") or {}
    if kind == "text":
        return [{"text": block["text"]}] if block.get("text") else []
    if kind not in ("image", "document"):
        return []  # thinking in a user turn, server tool blocks: nothing Gemini reads
    if source.get("type") == "text":
        return [{"text": source["data"]}] if source.get("data") else []
    if source.get("type") == "content":
        inner = _blocks(source.get("content"))
        return [p for at, b in enumerate(inner) for p in _parts(b, f"{where}.source.content[{at}]", shape, model)]
    if not (shape.images if kind == "image" else shape.documents):
        return [{"text": IMAGE_OMITTED if kind == "image" else DOCUMENT_OMITTED}]
    if source.get("type") == "url":
        return [files.by_url(kind, source.get("url"), model, f"{where}.source.url")]
    return [files.inline(kind, source)]


def _answers(calls_made: tuple[tuple[str, str], ...], results: dict[str, list[Part]]) -> list[Part]:
    """One functionResponse per call, in call order (a missing one says so), then
    their attachments, then results whose call is older, as text."""
    responses: list[Part] = []
    attachments: list[Part] = []
    answered: set[str] = set()  # a result answers one call, the first with its id
    for call_id, name in calls_made:
        answer = results.get(call_id) if call_id not in answered else None
        answered.add(call_id)
        if answer is None:
            answer = [_response(call_id, name, {"error": NO_RESULT})]
        responses.append(answer[0])
        attachments += answer[1:]
    stray: list[Part] = []
    for call_id, (first, *extra) in results.items():
        if call_id in answered:
            continue
        response = first["functionResponse"]["response"]
        text = response["output"] if "output" in response else f"Error: {response['error']}"
        stray += [{"text": f"[result of tool call {call_id}]\n{text}"}, *extra]
    return responses + attachments + stray


def _stand_in_signatures(contents: list[dict[str, Any]]) -> None:
    """Gemini 3 requires a signature on the first function call of every model turn in
    the current turn (the calls after the last user message that is not only function
    responses); history that lost it (another provider's, or dropped by the client)
    gets Google's documented stand-in."""
    start = 0
    for index, content in enumerate(contents):
        if content["role"] == "user" and not any("functionResponse" in p for p in content["parts"]):
            start = index
    for index in range(start, len(contents)):
        content = contents[index]
        if content["role"] != "model":
            continue
        at = next((i for i, p in enumerate(content["parts"]) if "functionCall" in p), None)
        if at is not None and "thoughtSignature" not in content["parts"][at]:
            # A new content and part: the turn's own are shared with other requests (repeated).
            parts = list(content["parts"])
            parts[at] = {**parts[at], "thoughtSignature": thought_signatures.DUMMY}
            contents[index] = {**content, "parts": parts}


# -- tools ------------------------------------------------------------------------


def _is_function(tool: Any) -> bool:
    """Client tools have no type (or "custom"); a typed tool such as web_search_20250305
    is one of Anthropic's server tools, which Gemini cannot run."""
    return isinstance(tool, dict) and tool.get("type") in (None, "custom") and bool(tool.get("name"))


def _tools(tools: Sequence[Any]) -> list[dict[str, Any]]:
    """Gemini's `tools` (built once per distinct list: repeated.section); none without a function."""
    declarations = [_declaration(t) for t in tools if _is_function(t)]
    return [{"functionDeclarations": declarations}] if declarations else []


def _declaration(tool: dict[str, Any]) -> dict[str, Any]:
    declaration: dict[str, Any] = {"name": function_name(tool["name"])}
    if tool.get("description"):
        declaration["description"] = tool["description"]
    if (parameters := schema.parameters(tool.get("input_schema"))) is not None:
        declaration["parameters"] = parameters
    return declaration


def _tool_config(choice: Any) -> dict[str, Any] | None:
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind not in CHOICES:
        return None
    config: dict[str, Any] = {"mode": CHOICES[kind]}
    if kind == "tool" and choice.get("name"):
        config["allowedFunctionNames"] = [function_name(str(choice["name"]))]
    return {"functionCallingConfig": config}

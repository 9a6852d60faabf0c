"""Gemini answer → Anthropic message: whole JSON bodies, and the block builder the
stream shares. Pure.

Gemini answers in parts: thoughts (`thought: true`), text, function calls, any of
them carrying a `thoughtSignature` (see thought_signatures.py for how those travel). A
streamed text part arrives in pieces, one per chunk, and its signature may come on
the last piece, even an empty one. `Blocks` turns parts into Anthropic content-block
events, one block open at a time, so a whole answer and a stream give the same
message.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from modelmux.errors import GatewayError, broken_answer, untranslatable
from modelmux.translate import messages, thought_signatures
from modelmux.translate.anthropic_side import Context
from modelmux.translate.gemini import calls
from modelmux.translate.gemini.errors import error_from
from modelmux.translate.stream_writer import TEXT, THINKING, ContentWriter, StreamWriter

logger = logging.getLogger(__name__)

# Gemini's FinishReason values (its API reference, Candidate.FinishReason), by what they
# say of the answer. Its filters withheld it ("flagged", "blocked"): Anthropic's refusal.
REFUSALS = frozenset({
    "SAFETY", "RECITATION", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT",
    "IMAGE_RECITATION", "MODEL_ARMOR",
})  # fmt: skip
# It ended normally. FINISH_REASON_UNSPECIFIED is documented as unused: a finish that
# says nothing more, as STOP.
NORMAL = frozenset({"STOP", "MAX_TOKENS", "FINISH_REASON_UNSPECIFIED"}) | REFUSALS
# Its answer failed: Anthropic has no stop reason for these, and ending the turn would
# hand Claude Code a call that never came, or half an answer, as whole. An error.
# Values Gemini adds later are errors too: every one it added beyond these said a
# failure or a filter.
FAILURES = {
    "MALFORMED_FUNCTION_CALL": "the function call it generated is invalid",
    "UNEXPECTED_TOOL_CALL": "it generated a call to a tool that is not declared or not enabled",
    "TOO_MANY_TOOL_CALLS": "it called too many tools in a row",
    "MALFORMED_RESPONSE": "its response was malformed",
    "MISSING_THOUGHT_SIGNATURE": "the request lacked a thought signature",
    "LANGUAGE": "the answer was in a language it does not support",
    "NO_IMAGE": "it was to generate an image and did not",
    "IMAGE_OTHER": "its image generation stopped",
    "OTHER": "for a reason it did not say",
}
BLOCKED = "BLOCKED"  # promptFeedback.blockReason: the prompt itself was refused

# Gemini's Part holds one kind of data: "Exactly one field within a Part should be set"
# (its reference, Part). Text and function calls have Anthropic blocks; media, files and
# code execution do not, and modelmux never asks for them (no response modalities, no
# code execution tool): an error, never dropped. Beside its data a part may carry these.
PART_DATA = frozenset({"text", "functionCall"})
PART_METADATA = frozenset({"thought", "thoughtSignature", "videoMetadata", "mediaResolution", "partMetadata"})
UNTRANSLATABLE_PARTS = {
    "inlineData": "media the model generated (an inlineData part)",
    "fileData": "a file (a fileData part)",
    "executableCode": "code for Gemini to run (an executableCode part)",
    "codeExecutionResult": "the result of Gemini running code (a codeExecutionResult part)",
    "functionResponse": "a function's result (a functionResponse part)",
    "toolCall": "a call of a Gemini server tool (a toolCall part)",
    "toolResponse": "a Gemini server tool's result (a toolResponse part)",
}


def stop_reason(finish: str | None, called_tools: bool) -> str:
    """Gemini ends a turn that called functions with STOP."""
    if finish in REFUSALS or finish == BLOCKED:
        return "refusal"
    if finish == "MAX_TOKENS":
        return "max_tokens"
    return "tool_use" if called_tools else "end_turn"


def stop_details(finish: str | None, message: str | None) -> dict[str, Any] | None:
    """Why Gemini refused, in Anthropic's place for it (RefusalStopDetails: a policy
    category, null when none of Anthropic's applies, and a readable explanation)."""
    if finish == BLOCKED:
        return messages.refusal_details(f"Gemini blocked the prompt: {message or 'no reason given'}")
    if finish in REFUSALS:
        return messages.refusal_details(f"Gemini stopped: {finish}{f': {message}' if message else ''}")
    return None


def failure(finish: str | None, message: str | None) -> GatewayError | None:
    """The error an answer that ended this way is: one that failed (FAILURES), or ended
    for a reason Gemini's reference does not give."""
    if finish is None or finish in NORMAL or finish == BLOCKED:
        return None
    why = FAILURES.get(finish, "a finishReason its API reference does not define")
    said = f": {message}" if message else ""
    return broken_answer(f"Gemini stopped with finishReason {finish[:60]!r} ({why}){said}")


def usage(metadata: dict[str, Any] | None) -> dict[str, Any]:
    """Anthropic's disjoint counts: input without what came from Gemini's cache, and
    output with the thinking Gemini bills as output (and says apart, when it thought)."""
    metadata = metadata or {}
    prompt = metadata.get("promptTokenCount") or 0
    cached = metadata.get("cachedContentTokenCount") or 0
    thoughts = metadata.get("thoughtsTokenCount")
    thinking = thoughts if isinstance(thoughts, int) else None
    output = (metadata.get("candidatesTokenCount") or 0) + (thinking or 0)
    return messages.usage(max(prompt - cached, 0), output, cached, thinking=thinking)


def candidate_of(body: dict[str, Any]) -> dict[str, Any]:
    candidates = body.get("candidates")
    first = candidates[0] if isinstance(candidates, list) and candidates else None
    return first if isinstance(first, dict) else {}


def parts_of(candidate: dict[str, Any]) -> list[dict[str, Any]]:
    parts = (candidate.get("content") or {}).get("parts")
    if not isinstance(parts, list):
        return []
    if not all(isinstance(part, dict) for part in parts):
        raise broken_answer("a part of its content is not an object")
    return parts


def finish_message(body: dict[str, Any]) -> str | None:
    """What Gemini says about its finish: the candidate's finishMessage, or why the
    prompt was blocked."""
    message = candidate_of(body).get("finishMessage") or (body.get("promptFeedback") or {}).get("blockReason")
    return message if isinstance(message, str) else None


def finish_of(body: dict[str, Any]) -> str | None:
    if (body.get("promptFeedback") or {}).get("blockReason"):
        return BLOCKED
    reason = candidate_of(body).get("finishReason")
    return reason if isinstance(reason, str) else None


class Blocks:
    """Gemini parts in, Anthropic content blocks out (start, deltas, stop), through a
    stream writer."""

    def __init__(self, context: Context, writer: StreamWriter) -> None:
        self.context = context
        self.writer = writer
        self.called_tools = False
        self._previous: str | None = None  # a signature for the open text block, sent when it closes
        self._skipped: set[str] = set()  # part fields logged as skipped, once per answer

    def part(self, part: dict[str, Any]) -> None:
        """Raises GatewayError for a part an Anthropic message cannot hold."""
        self._check(part)
        signature = part.get("thoughtSignature") if isinstance(part.get("thoughtSignature"), str) else None
        if part.get("thought") is True:
            self._thought(str(part.get("text") or ""), signature)
        elif isinstance(part.get("functionCall"), dict):
            self._call(part["functionCall"], signature)
        else:
            self._text(str(part["text"]) if isinstance(part.get("text"), str) else "", signature)

    def _check(self, part: dict[str, Any]) -> None:
        """A part of data with no Anthropic block is an error; a field Gemini's reference
        does not define is one too, unless it comes beside text or a function call (then
        it is not the part's data, which is one field: skipped, and logged once)."""
        if found := next((key for key in UNTRANSLATABLE_PARTS if key in part), None):
            raise untranslatable(UNTRANSLATABLE_PARTS[found])
        unknown = sorted(part.keys() - PART_DATA - PART_METADATA)
        if unknown and not part.keys() & PART_DATA:
            raise untranslatable(f"a part of a kind Gemini's API reference does not define ({', '.join(unknown)[:80]})")
        for key in unknown:
            if key not in self._skipped:
                self._skipped.add(key)
                logger.warning("skipping the field %r of a Gemini part: its API reference does not define it", key[:80])

    def end(self) -> None:
        """Close the open block: the message ends here."""
        self._close(last=True)

    def writes_text(self) -> bool:
        """Whether a text block is open with no signature waiting: the stream's fast path
        may then add text to it directly."""
        return self.writer.kind == TEXT and not self._previous

    def _thought(self, text: str, signature: str | None) -> None:
        if text:
            if not self._unsealed_thinking():
                self._start(THINKING)
            self.writer.thinking(text)
        if signature:
            if not self._unsealed_thinking():
                self._start(THINKING)
            self._seal(thought_signatures.THOUGHT, signature)

    def _text(self, text: str, signature: str | None) -> None:
        continuing = self.writer.kind == TEXT
        if signature and continuing:
            self._previous = signature  # it belongs to the text already sent
        elif signature and text:
            self._carry(signature)
        # A signature on an empty part with no text before it has no part to go back
        # to; Gemini validates only function-call signatures, so it is let go.
        if text:
            if not continuing:
                self._start(TEXT)
            self.writer.text(text)

    def _call(self, call: dict[str, Any], signature: str | None) -> None:
        if signature:
            self._carry(signature)
        name = str(call.get("name") or "")
        self._close()
        self.writer.open_tool_use(calls.tool_use_id(call), self.context.tool_names.get(name, name))
        arguments = call.get("args")
        if isinstance(arguments, dict) and arguments:
            self.writer.input_json(json.dumps(arguments, ensure_ascii=False))
        self.called_tools = True
        self._close()

    def _carry(self, signature: str) -> None:
        """A signature for the part that comes next rides on a thinking block just
        before it: the thoughts leading to it, or an empty one."""
        if not self._unsealed_thinking():
            self._start(THINKING)
        self._seal(thought_signatures.NEXT, signature)

    def _unsealed_thinking(self) -> bool:
        """A thinking block is open that nothing has sealed: its signature is not sent."""
        return self.writer.kind == THINKING and not self.writer.signed

    def _seal(self, kind: str, signature: str) -> None:
        self.writer.signature(thought_signatures.carrier(kind, signature))

    def _start(self, kind: str) -> None:
        """A text or thinking block, after the open one."""
        self._close()
        self.writer.open(kind)

    def _close(self, last: bool = False) -> None:
        """A text block's signature that came after its text rides on a thinking block
        after it, unless the text ends the message: Claude Code's `-p` and its SDK's
        result are the last block's text, so a block after the answer empties them.
        Such a signature is not sent: Google's thought-signatures page says signatures
        on parts other than function calls are "recommended" and "not strictly
        enforced", while calls always carry their own."""
        if self.writer.kind is None:
            return
        closed = self.writer.kind
        self.writer.close()
        if closed == TEXT and self._previous:
            signature, self._previous = self._previous, None
            if not last:
                self._start(THINKING)
                self._seal(thought_signatures.PREVIOUS, signature)
                self._close()


def signed_first(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A whole answer's parts with the signature of a run of text parts on the run's
    first part. The run becomes one text block and goes back as one text part, so the
    signature is that part's either way; on the first, it rides before the text
    (Blocks), never after the answer."""
    out = [dict(p) for p in parts]
    first: dict[str, Any] | None = None  # the part the open run's text block starts with
    for part in out:
        if part.get("thought") is True or "functionCall" in part:
            first = None
        elif first is None:
            first = part if part.get("text") else None
        elif "thoughtSignature" in part and "thoughtSignature" not in first:
            first["thoughtSignature"] = part.pop("thoughtSignature")
    return out


def from_gemini(body: dict[str, Any], context: Context) -> dict[str, Any]:
    """An Anthropic message from a whole generateContent response. Raises GatewayError
    when it is an error (an HTTP 200 can carry one) or holds no answer at all."""
    if isinstance(body.get("error"), dict):
        raise error_from(body["error"])
    if not candidate_of(body) and finish_of(body) != BLOCKED:
        raise broken_answer("it has no candidate")
    candidate = candidate_of(body)
    writer = ContentWriter()
    writer.start(context.model, 0)
    blocks = Blocks(context, writer)
    for part in signed_first(parts_of(candidate)):
        blocks.part(part)
    finish, said = finish_of(body), finish_message(body)
    if error := failure(finish, said):
        raise error
    blocks.end()
    reason, details = stop_reason(finish, blocks.called_tools), stop_details(finish, said)
    return messages.message(context.model, writer.written, reason, usage(body.get("usageMetadata")),
                            stop_details=details)

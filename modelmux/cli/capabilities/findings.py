"""What `check --deep` established about one provider and model, and the routes.yaml
lines that follow from it. Pure.

Two kinds of line: the provider's shaping keys (config.types.Shape) where the gateway
would send something the provider refused, or hold back what it takes; and the model's
facts under `providers.NAME.models` (context_window, max_output, thinking, images,
documents), printed whenever a probe showed them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from modelmux.config.types import Provider
from modelmux.translate.registry import PROTOCOLS

# Claude Code asks for 32000 output tokens (configuration.md); a smaller limit is a 400.
CLAUDE_CODE_OUTPUT = 32000
EXCERPT = 110  # characters of an upstream's words quoted as evidence
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:-]*")


@dataclass
class Finding:
    capability: str
    found: str
    evidence: str  # the status and a short excerpt of what showed it, scrubbed
    answered: bool = True  # False: no usable answer (none in time, 429, 5xx): not known


@dataclass
class Facts:
    """None: not known."""

    max_tokens_field: str | None = None  # the field it takes, when a 400 refused the other
    stream_options_refused: bool = False
    effort_refused: bool = False  # reasoning_effort (Chat) or `reasoning` (Responses)
    summary_refused: bool = False  # Responses' reasoning summaries
    thinking: bool | None = None
    reasoning_history: bool | None = None  # a 400 asked for the reasoning back with tool calls
    context_window: int | None = None
    max_output: int | None = None
    images: bool | None = None
    documents: bool | None = None


@dataclass
class Report:
    provider: str
    protocol: str
    model: str | None
    credential: str
    plan: list[str]  # the requests it may send, in order
    sent: int = 0
    findings: list[Finding] = field(default_factory=list)
    provider_lines: list[str] = field(default_factory=list)
    model_lines: list[str] = field(default_factory=list)
    failed: bool = False  # the gateway's own request did not work: nothing else was asked
    checked: bool = True  # False: nothing could be probed; the note says why
    note: str = ""

    @property
    def complete(self) -> bool:
        return self.checked and not self.failed and all(f.answered for f in self.findings)


def provider_lines(provider: Provider, facts: Facts) -> list[str]:
    """`key: value` lines for providers.NAME: only what changes what the gateway sends,
    and only keys the provider's protocol takes."""
    shape = provider.shape
    found: dict[str, Any] = {}
    if facts.max_tokens_field and facts.max_tokens_field != shape.max_tokens_field:
        found["max_tokens_field"] = facts.max_tokens_field
    limit = facts.max_output
    if limit is not None and (shape.max_tokens_limit or CLAUDE_CODE_OUTPUT) > limit:
        found["max_tokens_limit"] = limit
    if facts.stream_options_refused and "stream_options" not in shape.drop_fields:
        found["drop_fields"] = sorted(shape.drop_fields | {"stream_options"})
    if facts.effort_refused:
        found["reasoning_effort"] = False
    if facts.summary_refused and shape.reasoning_summary is not None:
        found["reasoning_summary"] = "none"
    if facts.reasoning_history and not shape.reasoning_history:
        found["reasoning_history"] = True
    for key, known, now in (("images", facts.images, shape.images), ("documents", facts.documents, shape.documents)):
        if known is not None and known != now:
            found[key] = known
    takes = [key for key in found if key in PROTOCOLS[provider.protocol].shaping]
    return [f"{key}: {scalar(found[key])}" for key in takes]


def model_lines(model: str, facts: Facts) -> list[str]:
    """The model's entry under providers.NAME.models, with what was found of it."""
    known = [(key, value) for key, value in (
        ("context_window", facts.context_window), ("max_output", facts.max_output), ("thinking", facts.thinking),
        ("images", facts.images), ("documents", facts.documents),
    ) if value is not None]  # fmt: skip
    if not known:
        return []
    return [f"- name: {scalar(model)}", *(f"  {key}: {scalar(value)}" for key, value in known)]


def scalar(value: Any) -> str:
    """A YAML value: a name as written when YAML reads it back unchanged, else quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return f"[{', '.join(scalar(v) for v in value)}]"
    if isinstance(value, str) and not (_PLAIN.fullmatch(value) and value.lower() not in ("true", "false", "null")):
        return json.dumps(value)
    return str(value)


def excerpt(text: str, around: str = "") -> str:
    """One line of at most EXCERPT characters; the part with `around` in it when the
    start would leave it out (the number a long refusal names)."""
    line = " ".join(text.split())
    if len(line) <= EXCERPT:
        return line
    at = line.find(around) if around else -1
    if at + len(around) < EXCERPT - 1:
        return line[: EXCERPT - 1] + "…"
    start = max(0, min(at - EXCERPT // 2, len(line) - EXCERPT + 1))
    return "…" + line[start : start + EXCERPT - 2] + ("…" if start + EXCERPT - 2 < len(line) else "")

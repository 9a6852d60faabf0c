"""Reasoning effort written into a model name: `NAME(EFFORT)` sends NAME upstream with
that effort, in the provider's own form, overriding what the client asked. Pure.

EFFORT is one of NAMED or a token budget (`(8192)`). Which efforts a provider takes
is checked when routes.yaml loads (each protocol's `effort_problem`), so a wrong one
is a config error naming the model rather than a 400 on the first request. What is
known of which models reason is kept here (OpenAI's, and which Gemini models think,
as both Gemini translations need it), the rest of Gemini's beside its translation
(gemini/thinking.py); a model this does not recognise is given any named effort and
left to its provider.
"""

from __future__ import annotations

import re

NAMED = ("none", "minimal", "low", "medium", "high", "xhigh")
# The effort levels a model may take, as routes.yaml's model facts name them: NAMED, and
# Anthropic's `max` (output_config.effort, which Claude Code sends), which no NAME(EFFORT)
# suffix sends.
LEVELS = (*NAMED, "max")
_SUFFIX = re.compile(r"^(.+?)\(([^()]*)\)$")
# OpenAI model names, optionally behind a vendor prefix such as "openai/".
_GPT = re.compile(r"^(?:.*/)?gpt-(\d+)(?:\.(\d+))?(.*)$")
_O_SERIES = re.compile(r"^(?:.*/)?o\d")
_GPT_OSS = re.compile(r"^(?:.*/)?gpt-oss")
_GEMINI = re.compile(r"gemini-(\d+)(?:\.(\d+))?")

Effort = str | int


def split(model: str) -> tuple[str, str | None]:
    """`NAME(TEXT)` → (NAME, TEXT); a name without a suffix → (name, None)."""
    found = _SUFFIX.match(model)
    return (found.group(1), found.group(2)) if found else (model, None)


def parse(text: str) -> Effort:
    """An effort as written in a model name. Raises ValueError naming what is accepted."""
    value = text.strip().lower()
    if value.isdigit():
        return int(value)
    if value not in NAMED:
        raise ValueError(f"'{text}' is not a reasoning effort; write one of {', '.join(NAMED)} or a token budget such as 8192")
    return value


def of(model: str) -> tuple[str, Effort | None]:
    """The upstream name and effort a model name stands for. A suffix that is no effort
    (a client may send any string) is part of the name."""
    name, text = split(model)
    if text is None:
        return model, None
    try:
        return name, parse(text)
    except ValueError:
        return model, None


def shown(model: str, effort: Effort | None) -> str:
    return model if effort is None else f"{model}({effort})"


def openai_problem(protocol: str, model: str, effort: Effort) -> str | None:
    """Why OpenAI's `model` cannot take `effort` over `protocol` (either of OpenAI's APIs,
    which take a named effort only); None when it can."""
    if isinstance(effort, int):
        return f"{protocol} takes a named effort ({', '.join(NAMED)}), not a token budget"
    return _openai_problem(model, effort)


def _openai_problem(model: str, effort: str) -> str | None:
    """From OpenAI's ReasoningEffort reference: models before gpt-5.1 do not take none;
    gpt-5.1 takes none, low, medium, high; xhigh starts with gpt-5.1-codex-max;
    gpt-5-pro takes only high; the o-series takes low, medium, high; GPT-4 and earlier
    do not reason."""
    name = model.lower()
    allowed = set(NAMED)
    if _O_SERIES.match(name):
        allowed = {"low", "medium", "high"}
    elif gpt := _GPT.match(name):
        version, rest = (int(gpt.group(1)), int(gpt.group(2) or 0)), gpt.group(3)
        if version < (5, 0):
            return f"{model} is not a reasoning model and takes no reasoning effort; remove the suffix"
        if version == (5, 0) and rest.startswith("-pro"):
            allowed = {"high"}
        if version < (5, 1):
            allowed -= {"none"}
        if version < (5, 1) or (version == (5, 1) and "codex-max" not in rest):
            allowed -= {"xhigh"}
        if version == (5, 1) and not rest:
            allowed -= {"minimal"}
    if effort in allowed:
        return None
    return f"{model} takes reasoning effort {', '.join(e for e in NAMED if e in allowed)}, not {effort}"


def reasons(model: str) -> bool:
    """Whether `model` is a reasoning model that takes `reasoning_effort` on Chat
    Completions, so a thinking request reaches it with an effort (a provider's
    `reasoning_effort: true|false` decides for every model instead):

    - OpenAI's reasoning models, the o-series and GPT-5 (OpenAI's reasoning guide),
      but not o1-mini and o1-preview, which predate the parameter, nor the `-chat`
      models: gpt-5-chat answers "Unsupported parameter: 'reasoning.effort'", later
      ones take `medium` only;
    - gpt-oss, OpenAI's open-weight reasoning models ("low, medium, high");
    - Gemini 2.5 and later through Google's OpenAI-compatible endpoint, which maps
      `reasoning_effort` to its thinking level or budget (Google's "OpenAI
      compatibility" page).
    """
    name = model.lower()
    if _GPT_OSS.match(name):
        return True
    if _O_SERIES.match(name):
        return not re.search(r"o1-(mini|preview)", name)
    if gpt := _GPT.match(name):
        return (int(gpt.group(1)), int(gpt.group(2) or 0)) >= (5, 0) and not gpt.group(3).startswith("-chat")
    if "gemini" in name:
        return gemini_thinks(model)
    return False


def gemini_version(model: str) -> tuple[int, int] | None:
    found = _GEMINI.search(model.lower())
    return (int(found.group(1)), int(found.group(2) or 0)) if found else None


def gemini_thinks(model: str) -> bool:
    """Whether `model` takes a thinkingConfig at all: Gemini 1.x and 2.0 and the Gemma
    models answer 400 to one."""
    found = gemini_version(model)
    return found >= (2, 5) if found is not None else "gemma" not in model.lower()

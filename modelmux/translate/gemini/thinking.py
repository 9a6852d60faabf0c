"""How much Gemini thinks: `generationConfig.thinkingConfig` from the client's request
or from an effort the route names. Pure.

Gemini's thinking docs (ai.google.dev/gemini-api/docs/thinking, and the Vertex AI
"thinking" page) give two controls that a request may not combine (400):

- Gemini 2.5 takes `thinkingBudget`, a token count: 2.5 Pro 128..32768 and cannot
  turn thinking off; 2.5 Flash 0..24576; 2.5 Flash-Lite 0 or 512..24576; -1 lets the
  model decide (dynamic).
- Gemini 3 takes `thinkingLevel`: 3 Pro `low`/`high`; 3.1 Pro `low`/`medium`/`high`;
  3 Flash `minimal`/`low`/`medium`/`high`. Thinking cannot be turned off on Pro.
  Gemini 3 still accepts `thinkingBudget` "for backwards compatibility", with
  possibly worse results.

Gemini 2.0 and earlier, and Gemma, take no thinkingConfig at all.

So the translator reads the major version from the upstream model name: `gemini-3`
and later get a level, clamped to what that model family accepts; anything else,
including names it cannot read (aliases such as `gemini-flash-latest`), gets a
budget, which every thinking Gemini accepts. Thoughts are asked for
(`includeThoughts`) whenever thinking is on, so Claude Code can show them.
"""

from __future__ import annotations

from typing import Any

from modelmux.translate.anthropic_side import EFFORT_BUDGETS
from modelmux.translate.effort import Effort, gemini_thinks, gemini_version

LEVELS = ("minimal", "low", "medium", "high")
LEVEL_OF_EFFORT = {"none": "minimal", "minimal": "minimal", "low": "low", "medium": "medium",
                   "high": "high", "xhigh": "high", "max": "high"}  # fmt: skip
BUDGET_OF_EFFORT = {"none": 0, "minimal": 512, "low": 2048, "medium": 8192,
                    "high": 24576, "xhigh": 32768, "max": 32768}  # fmt: skip
DYNAMIC = -1


def uses_levels(model: str) -> bool:
    """Whether `model` is a Gemini 3 or later (thinkingLevel, and strict signatures)."""
    found = gemini_version(model)
    return found is not None and found[0] >= 3


def thinking_config(body: dict[str, Any], model: str, effort: Effort | None = None) -> dict[str, Any] | None:
    """The thinkingConfig for `body` sent to `model`; `effort` overrides what the client
    asked. None: the client asked for no thinking, so the model's default applies."""
    wanted = effort if effort is not None else _client_effort(body)
    if wanted is None or not gemini_thinks(model):
        return None
    if uses_levels(model):
        return {"thinkingLevel": _level(model, wanted), "includeThoughts": wanted not in ("none", 0)}
    budget = _budget(model, wanted)
    return {"thinkingBudget": budget, "includeThoughts": budget != 0}


def _client_effort(body: dict[str, Any]) -> Effort | None:
    thinking = body.get("thinking") or {}
    if thinking.get("type") == "enabled":
        return int(thinking.get("budget_tokens") or 0)
    if thinking.get("type") == "adaptive":
        # Adaptive thinking at high effort (Anthropic's default) is the model's own call:
        # Gemini 2.5's dynamic budget; lower efforts get a fixed budget.
        effort = (body.get("output_config") or {}).get("effort") or "high"
        return "adaptive" if effort in ("high", "max") else effort
    return None


def effort_problem(model: str, effort: Effort) -> str | None:
    """Why `model` cannot take a route's `effort` (see the module's facts); None when it
    can. Within a model's range, a named effort maps to the nearest setting."""
    if not gemini_thinks(model):
        return f"{model} does not think (Gemini 2.0 and earlier and Gemma take no thinkingConfig); remove the suffix"
    name = model.lower()
    if uses_levels(model):
        if isinstance(effort, int):
            return None  # Gemini 3 still takes a budget; the nearest level is sent
        accepted = _accepted_levels(model)
        if ("minimal" if effort == "none" and "flash" in name else effort) in accepted:
            return None
        if effort == "none":
            return f"{model} cannot turn thinking off; its lowest level is {accepted[0]}"
        return f"{model} takes thinking levels {', '.join(accepted)}, not {effort}"
    budget = effort if isinstance(effort, int) else BUDGET_OF_EFFORT[effort]
    if "pro" in name and budget == 0:
        return f"{model} cannot turn thinking off; write a budget of 128 to 32768 or low/medium/high"
    if isinstance(effort, int) and (limits := _budget_limits(name)) is not None and not _within(budget, limits):
        low, high = limits
        return f"{model} takes a thinking budget of {low} to {high}" + (" (or 0: off)" if "flash-lite" in name else "")
    return None


def _budget_limits(name: str) -> tuple[int, int] | None:
    if "flash-lite" in name:
        return 512, 24576
    if "flash" in name:
        return 0, 24576
    if "pro" in name:
        return 128, 32768
    return None


def _within(budget: int, limits: tuple[int, int]) -> bool:
    return limits[0] <= budget <= limits[1] or budget == 0 and limits[0] == 512


def _level(model: str, wanted: Effort) -> str:
    if isinstance(wanted, int):
        level = "minimal" if wanted == 0 else next((e for limit, e in EFFORT_BUDGETS if wanted < limit), "high")
    else:
        level = LEVEL_OF_EFFORT.get(wanted, "high")
    accepted = _accepted_levels(model)
    if level in accepted:
        return level
    # The nearest level the model accepts, rounding up (a model asked to think less
    # than it can is closest to its least thinking).
    rank = LEVELS.index(level)
    return next((lv for lv in LEVELS[rank:] if lv in accepted), accepted[-1])


def _accepted_levels(model: str) -> tuple[str, ...]:
    name = model.lower()
    if "flash" in name:
        return LEVELS
    if gemini_version(model) == (3, 0) and "pro" in name:
        return ("low", "high")
    return ("low", "medium", "high")


def _budget(model: str, wanted: Effort) -> int:
    if wanted == "adaptive":
        return DYNAMIC
    budget = wanted if isinstance(wanted, int) else BUDGET_OF_EFFORT.get(wanted, DYNAMIC)
    if budget == DYNAMIC:
        return budget
    name = model.lower()
    if "flash-lite" in name:
        return 0 if budget == 0 else min(max(budget, 512), 24576)
    if "flash" in name:
        return min(budget, 24576)
    if "pro" in name:
        return min(max(budget, 128), 32768)
    return min(budget, 32768)

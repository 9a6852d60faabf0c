"""What Claude Code is told about a profile's models: which model is which slot, each
one's name and description in `/model`, and the context window and output limit it
plans with. Pure.

Verified against Claude Code 2.1.197 (VERIFIED_VERSION): docs/claude-code.md says what
that version does with each variable, and how to re-check a new one. In short: a model
name carrying `[1m]`, including the `opus[1m]` default it picks when ANTHROPIC_MODEL is
unset, gets a window of 1,000,000 tokens whatever CLAUDE_CODE_MAX_CONTEXT_TOKENS says;
that variable sets the window of every model whose name does not start with `claude-`,
as one number for all of them.

Only models a profile sends to a provider other than Anthropic itself are described
("ours"): Claude Code knows Claude models by name, and a profile of Claude models
through to Anthropic keeps exactly what it had.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from modelmux.config.loader import SLOTS
from modelmux.config.model_facts import Discovered, Resolved, resolve
from modelmux.config.types import Config, ModelFacts, Profile, Provider

VERIFIED_VERSION = "2.1.197"
SLOT_VARIABLES = {slot: f"ANTHROPIC_DEFAULT_{slot.upper()}_MODEL" for slot in SLOTS}
MAIN = "ANTHROPIC_MODEL"
# The model of Claude Code's background requests (titles, summaries), before the haiku slot.
SMALL_FAST = "ANTHROPIC_SMALL_FAST_MODEL"
SUBAGENT = "CLAUDE_CODE_SUBAGENT_MODEL"
# One more /model entry: the profile's model when no slot holds it.
CUSTOM = "ANTHROPIC_CUSTOM_MODEL_OPTION"
CONTEXT = "CLAUDE_CODE_MAX_CONTEXT_TOKENS"
COMPACT = "CLAUDE_CODE_AUTO_COMPACT_WINDOW"
OUTPUT = "CLAUDE_CODE_MAX_OUTPUT_TOKENS"
NO_1M = "CLAUDE_CODE_DISABLE_1M_CONTEXT"
# Suffixes of a slot's (or CUSTOM's) variable.
NAME, DESCRIPTION, CAPABILITIES = "_NAME", "_DESCRIPTION", "_SUPPORTED_CAPABILITIES"
# The variables a launch set for the profile's models, so that the next launch (a
# `modelmux env` in the same shell, then `modelmux run` of another profile) replaces
# them rather than taking them for the user's own.
RECORD = "MODELMUX_SET"
# Claude Code's own ask of a model it does not know; a smaller known maximum lowers it.
DEFAULT_OUTPUT = 32000
ONE_MILLION = 1_000_000
ANTHROPIC_HOST = "api.anthropic.com"


def model_environment(
    config: Config, profile: Profile, base_env: Mapping[str, str], discovered: Discovered | None = None
) -> tuple[dict[str, str], list[str]]:
    """The model variables of `profile` for Claude Code: (variables to set, to unset).
    `base_env` is what Claude Code would inherit: a smaller limit of the user's own wins,
    and what a previous launch set (RECORD) and this one does not is unset."""
    ours = _ours(config, profile, discovered)
    values: dict[str, str] = {}
    for slot, model in profile.slots.items():
        values[SLOT_VARIABLES[slot]] = model
        if model in ours:
            values.update(labels(SLOT_VARIABLES[slot], ours[model]))
    if "haiku" in profile.slots:
        values[SMALL_FAST] = profile.slots["haiku"]
    if main := main_model(profile, ours):
        values[MAIN] = main
        if main not in profile.slots.values() and main in ours:
            values[CUSTOM] = main
            values.update(labels(CUSTOM, ours[main]))
    if profile.subagent:
        values[SUBAGENT] = profile.subagent
    main_facts = ours[main].facts if main in ours else None
    values.update(limits([r.facts for r in ours.values()], main_facts, base_env))
    recorded = set(base_env.get(RECORD, "").split(","))
    unset = [name for name in sorted(recorded - set(values)) if name in base_env]
    if values:
        values[RECORD] = ",".join(sorted(values))
    elif RECORD in base_env:
        unset.append(RECORD)
    return values, unset


def main_model(profile: Profile, ours: Mapping[str, Resolved]) -> str | None:
    """The model Claude Code starts with: the profile's `model`; else, when the profile
    has models of ours, the opus slot, which is Claude Code's own default (but with
    `[1m]` appended), or the first slot that is ours. None leaves Claude Code's choice."""
    if profile.model:
        return profile.model
    if not ours:
        return None
    if "opus" in profile.slots:
        return profile.slots["opus"]
    return next(model for slot in SLOTS if (model := profile.slots.get(slot)) in ours)


def labels(variable: str, resolved: Resolved) -> dict[str, str]:
    """A /model entry's name, description and capabilities: `glm-4.6 via zai`."""
    facts = resolved.facts
    found = {variable + NAME: f"{resolved.model} via {resolved.provider}",
             variable + DESCRIPTION: facts.description or describe(facts)}
    if (words := capabilities(facts)) is not None:
        found[variable + CAPABILITIES] = words
    return found


def describe(facts: ModelFacts) -> str:
    """A plain description from what is known: `128k context, 8k output, thinking` (ASCII:
    cmd may not take more)."""
    parts = [f"{_tokens(facts.context_window)} context" if facts.context_window else "context window not known"]
    if facts.max_output:
        parts.append(f"{_tokens(facts.max_output)} output")
    if facts.thinking is not None:
        parts.append("thinking" if facts.thinking else "no thinking")
    if facts.images is False:
        parts.append("no images")
    return ", ".join(parts)


def capabilities(facts: ModelFacts) -> str | None:
    """The words of `_SUPPORTED_CAPABILITIES`, or None when thinking or the efforts are
    not known: the list names every capability the model has, so a partial one would
    deny the unknown ones. `none` when it has none (cmd cannot set an empty value)."""
    if facts.thinking is None or facts.efforts is None:
        return None
    words = ["thinking"] if facts.thinking else []
    if facts.efforts:
        words.append("effort")
        words += [f"{level}_effort" for level in ("xhigh", "max") if level in facts.efforts]
    return ",".join(words) or "none"


def limits(ours: list[ModelFacts], main: ModelFacts | None, base_env: Mapping[str, str]) -> dict[str, str]:
    """The window and output limit Claude Code plans with, where known.

    The window is the smallest of the models': Claude Code takes one number for every
    model not named `claude-*`, and a session uses each slot (a /model switch, the Explore
    subagent on haiku, the subagent model), whose conversation the gateway cannot shrink.
    The output limit is the main model's, only where it is below Claude Code's own ask:
    the gateway caps each request at its model's maximum, so no other slot needs it.
    `[1m]` is turned off when any model of ours lacks a 1M window: Claude Code would
    append it to its default model, and it outranks the window set here."""
    found: dict[str, str] = {}
    recorded = set(base_env.get(RECORD, "").split(","))

    def own(name: str) -> int | None:  # the user's value, not one a previous launch set
        value = base_env.get(name, "")
        return int(value) if value.isdigit() and int(value) > 0 and name not in recorded else None

    windows = [facts.context_window for facts in ours if facts.context_window]
    if windows:
        window = min(windows)
        for name in (CONTEXT, COMPACT):
            found[name] = str(min(window, own(name) or window))
    if ours and not (len(windows) == len(ours) and min(windows) >= ONE_MILLION):
        found[NO_1M] = "1"
    output = main.max_output if main is not None else None
    if output and (own(OUTPUT) or output < DEFAULT_OUTPUT):
        found[OUTPUT] = str(min(output, own(OUTPUT) or DEFAULT_OUTPUT))
    return found


def _ours(config: Config, profile: Profile, discovered: Discovered | None) -> dict[str, Resolved]:
    """The profile's models that reach a provider other than Anthropic itself, by name."""
    found = {}
    for _, name in profile.names():
        resolved = resolve(config, name, discovered, profile)
        if resolved.provider is not None and not anthropic(config.providers[resolved.provider]):
            found[name] = resolved
    return found


def anthropic(provider: Provider) -> bool:
    """Anthropic itself: the client's own login passed through, or a key at its API."""
    return provider.passthrough or (urlsplit(provider.base_url).hostname or "") == ANTHROPIC_HOST


def _tokens(count: int) -> str:
    if count >= ONE_MILLION:
        return f"{round(count / ONE_MILLION, 2):g}M"
    return f"{round(count / 1000):g}k" if count >= 1000 else str(count)


def verified_variables() -> Iterable[str]:
    """Every variable name this module sets, for the check against the installed CLI."""
    for variable in (*SLOT_VARIABLES.values(), CUSTOM):
        yield from (variable, variable + NAME, variable + DESCRIPTION, variable + CAPABILITIES)
    yield from (MAIN, SMALL_FAST, SUBAGENT, CONTEXT, COMPACT, OUTPUT, NO_1M)

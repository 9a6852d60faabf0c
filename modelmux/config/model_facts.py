"""What is known of the model a name reaches: its context window, its output limit and
its capabilities (ModelFacts). Pure, but for the cache file's read and write.

Each fact comes from one of two places, in this order: what routes.yaml says of the
model (`providers.NAME.models[]` written as a mapping), then what the provider's own
model list reports of it (model_lists.facts, kept by the gateway and `modelmux check`
in the cache file). A fact neither gives stays None: a guess would tell Claude Code a
window the model does not have, which is the harm this exists to undo.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from modelmux import routing
from modelmux.config.paths import config_state
from modelmux.config.types import FACTS, Conditions, Config, ModelFacts, Profile, Provider
from modelmux.credentials.state_file import write_private
from modelmux.errors import GatewayError
from modelmux.translate import effort

logger = logging.getLogger(__name__)

ROUTES_YAML = "routes.yaml"
MODEL_LIST = "model list"
SUFFIX = ".model-facts.json"
VERSION = 1

Discovered = Mapping[str, Mapping[str, ModelFacts]]  # provider -> upstream model -> what its list reports


@dataclass(frozen=True)
class Resolved:
    """Where a name goes, and what is known of the model there."""

    requested: str  # the name the client asks for (a profile slot's model, e.g. "glm-4.6" or "gpt-5(high)")
    provider: str | None  # None when no route sends it anywhere
    model: str  # the name the upstream receives
    facts: ModelFacts


def resolve(config: Config, requested: str, discovered: Discovered | None = None,
            profile: Profile | None = None) -> Resolved:
    """Route `requested` as the gateway routes a request that names only it (aliases,
    routes without conditions, `NAME(EFFORT)`, `PROVIDER,MODEL`, providers' `models`,
    the default), then merge the facts of the model it reaches. With `profile`, as a
    request of that profile: routes whose only condition is the profile count too, and
    a provider the profile may not use is no provider (None)."""
    try:
        decision = routing.route(config, requested, profile, _NameAlone(profile) if profile else None)
    except GatewayError:
        return Resolved(requested, None, effort.of(config.resolve_alias(requested))[0], ModelFacts())
    return Resolved(requested, decision.provider.name, decision.upstream_model,
                    facts_for(decision.provider, decision.upstream_model, discovered))


class _NameAlone(routing.Facts):
    """A request of `profile` of which nothing is known but its model: only routes
    whose one condition is this profile hold for it, as routes with none do."""

    def __init__(self, profile: Profile) -> None:
        super().__init__({}, {}, profile.name)

    def hold(self, conditions: Conditions) -> bool:
        return not conditions or conditions == Conditions(profile=self.profile)


def facts_for(provider: Provider, model: str, discovered: Discovered | None = None) -> ModelFacts:
    """The facts of upstream `model` at `provider`: routes.yaml's, each missing one from
    the model list's."""
    listed = (discovered or {}).get(provider.name, {}).get(model)
    return merged(provider.facts.get(model), listed)


def merged(written: ModelFacts | None, listed: ModelFacts | None) -> ModelFacts:
    """Per fact: `written` (routes.yaml) wins, else `listed` (a model list), else None."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for origin, facts in ((ROUTES_YAML, written), (MODEL_LIST, listed)):
        for name in FACTS:
            value = getattr(facts, name) if facts is not None else None
            if value is not None and name not in values:
                values[name] = value
                sources[name] = facts.sources.get(name, origin) if facts is not None else origin
    return ModelFacts(**values, sources=sources)


def listed(**values: Any) -> ModelFacts:
    """Facts a model list reports: the values that are known, each from "model list"."""
    known = {name: value for name, value in values.items() if value is not None}
    return ModelFacts(**known, sources=dict.fromkeys(known, MODEL_LIST))


def updated(previous: Discovered, found: Discovered, providers: Iterable[str]) -> dict[str, dict[str, ModelFacts]]:
    """The discovered facts after asking lists: what `found` has for a provider replaces
    what was known of it (a list that reports nothing leaves nothing); a provider whose
    list did not answer keeps what it had; a provider no longer in routes.yaml is dropped."""
    result = {}
    for name in providers:
        facts = found[name] if name in found else previous.get(name)
        if facts:
            result[name] = dict(facts)
    return result


# -- the cache file ---------------------------------------------------------------------


def discovered_path(config: Path, environ: Mapping[str, str] | None = None) -> Path:
    """Where a routes.yaml's discovered facts are kept: one file per config in the state
    directory (`paths.config_state`), beside its credential state."""
    return config_state(config, SUFFIX, os.environ if environ is None else environ)


def load_discovered(path: Path) -> dict[str, dict[str, ModelFacts]]:
    """provider -> upstream model -> facts, as the gateway or `modelmux check` last wrote
    them; {} when the file is missing or cannot be read. A value of the wrong kind is
    left out (the file is a cache: the next model list answer rewrites it)."""
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    if not isinstance(document, dict) or document.get("version") != VERSION:
        return {}
    providers = document.get("providers")
    if not isinstance(providers, dict):
        return {}
    found: dict[str, dict[str, ModelFacts]] = {}
    for provider, models in providers.items():
        if not isinstance(models, dict):
            continue
        found[provider] = {model: listed(**_values(item)) for model, item in models.items() if isinstance(item, dict)}
    return found


def save_discovered(path: Path, discovered: Discovered) -> None:
    """Replace the cache file with `discovered` (only the facts: names, numbers, flags and
    effort levels; nothing of a request or a credential). Raises OSError."""
    document = {
        "version": VERSION,
        "providers": {
            provider: {model: _stored(facts) for model, facts in models.items() if facts}
            for provider, models in discovered.items()
        },
    }
    write_private(path, json.dumps(document, indent=1, ensure_ascii=False, sort_keys=True).encode())


def _stored(facts: ModelFacts) -> dict[str, Any]:
    values = {f.name: getattr(facts, f.name) for f in fields(facts) if f.name in FACTS}
    return {name: list(value) if name == "efforts" else value for name, value in values.items() if value is not None}


def _values(item: dict[str, Any]) -> dict[str, Any]:
    """The facts of one stored model that have the right kind."""
    values: dict[str, Any] = {}
    for name in ("context_window", "max_output"):
        if isinstance(item.get(name), int) and not isinstance(item[name], bool) and item[name] > 0:
            values[name] = item[name]
    for name in ("thinking", "images", "documents"):
        if isinstance(item.get(name), bool):
            values[name] = item[name]
    if isinstance(item.get("description"), str) and item["description"]:
        values["description"] = item["description"]
    levels = item.get("efforts")
    if isinstance(levels, list) and all(level in effort.LEVELS for level in levels):
        values["efforts"] = tuple(levels)
    return values

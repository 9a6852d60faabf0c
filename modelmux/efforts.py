"""routes.yaml's `NAME(EFFORT)` model names checked against the providers they reach,
so an effort a provider does not take is a config error, not a 400 at the first
request. Pure: the loader (modelmux.config) reports what this finds."""

from __future__ import annotations

from modelmux import effort
from modelmux.config_types import Config, Provider, route_for


def problems(config: Config) -> list[str]:
    """Every effort written in a route's or a fallback's model, in a provider's model list,
    and in the names clients ask for (alias targets, profile slots), checked where their
    route sends them."""
    found: list[str] = []
    for route in config.routes:
        sends = [(route.provider, route.model, f"{route.source}.model")]
        sends += [(f.provider, f.model, f"{route.source}.fallback[{i}].model") for i, f in enumerate(route.fallback)]
        found += [p for provider, model, where in sends if model
                  for p in _check(where, model, config.providers[provider])]  # fmt: skip
    for name, provider in config.providers.items():
        for i, model in enumerate(provider.models):
            found += _check(f"providers.{name}.models[{i}]", model, provider)
    asked = [(f"aliases.{alias}", target) for alias, target in config.aliases.items()]
    for profile in config.profiles.values():
        asked += [(f"profiles.{profile.name}.slots.{slot}", model) for slot, model in profile.slots.items()]
        asked += [(f"profiles.{profile.name}.model", profile.model)] if profile.model else []
    for where, model in asked:
        found += _check_asked(where, model, config)
    return found


def _check(where: str, model: str, provider: Provider) -> list[str]:
    name, text = effort.split(model)
    if text is None:
        return []
    try:
        wanted = effort.parse(text)
    except ValueError as e:
        return [f"{where}: {model}: {e}"]
    if problem := effort.problem(provider.protocol, name, wanted):
        return [f"{where}: {model} asks provider '{provider.name}' ({provider.protocol}) for reasoning effort "
                f"{wanted}, but {problem}"]  # fmt: skip
    return []


def _check_asked(where: str, model: str, config: Config) -> list[str]:
    """A name a client asks for carries its effort to each upstream its route tries,
    except where that upstream's model names an effort of its own (which wins)."""
    resolved = config.resolve_alias(model)
    base, text = effort.split(resolved)
    route = route_for(config.routes, resolved) if text is not None else None
    if route is None:
        return []
    sends = [(route.provider, route.model)] + [(f.provider, f.model) for f in route.fallback]
    found: list[str] = []
    for provider, upstream in sends:
        if upstream is None or effort.split(upstream)[1] is None:
            found += _check(where, f"{upstream or base}({text})", config.providers[provider])
    return found

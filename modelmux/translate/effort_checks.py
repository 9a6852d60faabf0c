"""routes.yaml's `NAME(EFFORT)` model names checked against the providers they reach,
so an effort a provider does not take is a config error, not a 400 at the first
request. Pure: the loader (modelmux.config.loader) reports what this finds."""

from __future__ import annotations

from collections.abc import Iterator

from modelmux.config.types import Config, Provider, route_for
from modelmux.translate import effort
from modelmux.translate.registry import PROTOCOLS


def problems(config: Config) -> list[str]:
    """Every effort written in a route's or a fallback's model, in a provider's model list,
    and in the names clients ask for (alias targets, a profile's names), checked where
    their route sends them."""
    return [problem for where, model, provider in sent(config) for problem in _check(where, model, provider)]


def sent(config: Config) -> Iterator[tuple[str, str, Provider]]:
    """Each model name routes.yaml sends a provider, as (where it is written, the name
    with the effort it is sent with, the provider): routes' and fallbacks' models,
    providers' model lists, and the names clients ask for (alias targets, a profile's
    slots, model and subagent). An asked name carries its effort to each upstream its
    route tries, except where that upstream's model names an effort of its own (which wins)."""
    for route in config.routes:
        sends = [(route.provider, route.model, f"{route.source}.model")]
        sends += [(f.provider, f.model, f"{route.source}.fallback[{i}].model") for i, f in enumerate(route.fallback)]
        yield from ((where, model, config.providers[provider]) for provider, model, where in sends if model)
    for name, provider in config.providers.items():
        yield from ((f"providers.{name}.models[{i}]", model, provider) for i, model in enumerate(provider.models))
    asked = [(f"aliases.{alias}", target) for alias, target in config.aliases.items()]
    for profile in config.profiles.values():
        asked += [(f"profiles.{profile.name}.{key}", model) for key, model in profile.names()]
    for where, model in asked:
        resolved = config.resolve_alias(model)
        text = effort.split(resolved)[1]
        route = route_for(config.routes, resolved)
        if route is None:
            continue
        for provider, upstream in [(route.provider, route.model)] + [(f.provider, f.model) for f in route.fallback]:
            if upstream is None:
                yield where, resolved, config.providers[provider]
            elif text is not None and effort.split(upstream)[1] is None:
                yield where, f"{upstream}({text})", config.providers[provider]


def _check(where: str, model: str, provider: Provider) -> list[str]:
    name, text = effort.split(model)
    if text is None:
        return []
    try:
        wanted = effort.parse(text)
    except ValueError as e:
        return [f"{where}: {model}: {e}"]
    if problem := PROTOCOLS[provider.protocol].effort_problem(name, wanted):
        return [f"{where}: {model} asks provider '{provider.name}' ({provider.protocol}) for reasoning effort "
                f"{wanted}, but {problem}"]  # fmt: skip
    return []

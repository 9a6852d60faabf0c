"""Which provider and upstream model serve a requested model name. Pure: no mitmproxy, no I/O."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from modelmux.config.types import Conditions, Config, ModelFacts, ModelPattern, Profile, Provider, Route, route_for
from modelmux.errors import GatewayError
from modelmux.translate import effort
from modelmux.translate.token_estimate import estimate_input_tokens

# /v1/models needs a created_at; configured names have none, so all share one fixed,
# obviously synthetic date rather than the gateway's start time (stable across restarts).
CATALOG_CREATED_AT = "2025-01-01T00:00:00Z"
EXPLICIT_FORM = "PROVIDER,MODEL"


@dataclass(frozen=True)
class Decision:
    requested: str  # the model as the client wrote it
    resolved: str  # after alias resolution
    provider: Provider
    upstream_model: str
    route: Route
    effort: effort.Effort | None = None  # from a `NAME(EFFORT)` model name: overrides the client's thinking
    # What is known of upstream_model at this provider (model_facts.facts_for): the
    # gateway fills it in, with what the model lists reported; empty, nothing is known.
    model_facts: ModelFacts = field(default_factory=ModelFacts)

    @property
    def rewrites_model(self) -> bool:
        return self.upstream_model != self.requested

    @property
    def restores_model(self) -> bool:
        """Whether the response's model must be set back to what the client asked for."""
        return self.rewrites_model and self.route.response_model == "requested"


class Facts:
    """What a request is besides its model, for routes' conditions; each fact worked out
    only when a route asks (the prompt estimate costs about 0.25 ms for Claude Code's
    requests)."""

    def __init__(self, body: Mapping[str, Any], headers: Mapping[str, str], profile: str | None) -> None:
        self.body = body
        self.headers = headers  # lowercase names
        self.profile = profile

    @cached_property
    def thinking(self) -> bool:
        thinking = self.body.get("thinking")
        return isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")

    @cached_property
    def tools(self) -> tuple[str, ...]:
        """Every offered tool's name and type (a server tool: `web_search_20250305`)."""
        found = []
        for tool in self.body.get("tools") or ():
            if isinstance(tool, dict):
                found += [v for v in (tool.get("name"), tool.get("type")) if isinstance(v, str)]
        return tuple(found)

    @cached_property
    def prompt_tokens(self) -> int:
        return estimate_input_tokens(dict(self.body))

    def hold(self, conditions: Conditions) -> bool:
        if conditions.thinking is not None and conditions.thinking != self.thinking:
            return False
        if conditions.profile is not None and conditions.profile != self.profile:
            return False
        if conditions.header is not None:
            name, value = conditions.header
            if name not in self.headers or (value is not None and self.headers[name].strip() != value):
                return False
        if conditions.tools and not any(fnmatch.fnmatchcase(t, g) for g in conditions.tools for t in self.tools):
            return False
        return conditions.prompt_tokens_above is None or self.prompt_tokens > conditions.prompt_tokens_above


def route(config: Config, model: str, profile: Profile | None = None, facts: Facts | None = None) -> Decision:
    """First matching route wins: its model pattern and its conditions (`facts`, what the
    request is; without them only routes with no conditions count). `PROVIDER,MODEL`
    names the provider itself. Raises GatewayError (404 no route, 403 profile forbids)."""
    decision = _decide(config, model, profile, facts)
    if decision is None:
        raise GatewayError(
            404,
            f"model '{model}' matches no route in {config.path.name} and there is no default; "
            f"{_what_exists(config, profile)}",
        )
    return decision


def _what_exists(config: Config, profile: Profile | None) -> str:
    """The names a client can ask for, and the patterns of the routes it may take (a
    config of glob routes alone names no model)."""
    names = ", ".join(model_names(config, profile))
    patterns = ", ".join(dict.fromkeys(
        f"{'regex ' if r.pattern.kind == 'regex' else ''}{r.pattern.text}" for r in config.routes
        if r.pattern.kind in ("glob", "regex") and (profile is None or profile.allows(r.provider))))  # fmt: skip
    if not patterns:
        return f"models that exist: {names or 'none are configured'}"
    return f"{f'models that exist: {names}' if names else 'no model is named in it'}; routes match {patterns}"


def _decide(config: Config, model: str, profile: Profile | None, facts: Facts | None) -> Decision | None:
    """route() without the 404's list of names (which reachable() builds by routing each
    name: through route() it would recurse for ever). None: no route."""
    if (explicit := _explicit(config, model, profile)) is not None:
        return explicit
    resolved = config.resolve_alias(model)
    candidate = route_for(config.routes, resolved, facts.hold if facts is not None else None)
    if candidate is None:
        return None
    if profile is not None and not profile.allows(candidate.provider):
        raise GatewayError(
            403,
            f"profile '{profile.name}' may only use providers {', '.join(sorted(profile.providers or ()))}, "
            f"but model '{model}' routes to '{candidate.provider}' ({candidate.source}); "
            f"add it to profiles.{profile.name}.providers or pick another model",
        )
    upstream, wanted = _upstream(candidate.model, resolved)
    return Decision(
        requested=model,
        resolved=resolved,
        provider=config.providers[candidate.provider],
        upstream_model=upstream,
        route=candidate,
        effort=wanted,
    )


def _explicit(config: Config, model: str, profile: Profile | None) -> Decision | None:
    """A `PROVIDER,MODEL` name (Claude Code's /model takes any string): that provider and
    that upstream model, when the provider exists and the profile allows it. None for
    other names."""
    name, comma, upstream = model.partition(",")
    if not comma or model in config.aliases:
        return None
    provider = config.providers.get(name.strip())
    if provider is None or not upstream.strip():
        raise GatewayError(
            404,
            f"model '{model}' names provider '{name.strip()}' ({EXPLICIT_FORM}), but "
            + (f"there is no such provider in {config.path.name}; known: {', '.join(config.providers)}"
               if provider is None else "no model after the comma"),
        )
    if profile is not None and not profile.allows(provider.name):
        raise GatewayError(
            403,
            f"profile '{profile.name}' may only use providers {', '.join(sorted(profile.providers or ()))}, "
            f"but model '{model}' names provider '{provider.name}'; add it to profiles.{profile.name}.providers",
        )
    upstream, wanted = effort.of(upstream.strip())
    rule = Route(ModelPattern("exact", model), provider.name, upstream, "requested", "PROVIDER,MODEL")
    return Decision(requested=model, resolved=model, provider=provider, upstream_model=upstream, route=rule,
                    effort=wanted)


def _upstream(model: str | None, resolved: str) -> tuple[str, effort.Effort | None]:
    """The upstream model and effort for a route or fallback whose model is `model` (None:
    the requested one): an effort in `model` wins over one in the requested name."""
    name, wanted = effort.of(resolved)
    if model is None:
        return name, wanted
    upstream, own = effort.of(model)
    return upstream, own if own is not None else wanted


def candidates(config: Config, decision: Decision, profile: Profile | None = None) -> list[Decision]:
    """The route's provider, then its fallbacks in order (those the profile allows), each
    with its own upstream model."""
    found = [decision]
    for fallback in decision.route.fallback:
        if profile is None or profile.allows(fallback.provider):
            upstream, wanted = _upstream(fallback.model, decision.resolved)
            provider = config.providers[fallback.provider]
            found.append(replace(decision, provider=provider, upstream_model=upstream, effort=wanted))
    return found


def model_names(config: Config, profile: Profile | None = None) -> list[str]:
    """Every name a client can ask for: aliases, exact route matches, provider model lists,
    and each provider model as `PROVIDER,MODEL`."""
    names = list(config.aliases)
    names += [r.pattern.text for r in config.routes if r.pattern.kind == "exact" and not r.conditions]
    names += [name for p in config.profiles.values() for _, name in p.names()]
    names += [f"{provider.name},{model}" for provider in config.providers.values() for model in provider.models]
    return [name for name in dict.fromkeys(names) if reachable(config, name, profile)]


def reachable(config: Config, name: str, profile: Profile | None = None) -> bool:
    try:
        return _decide(config, name, profile, None) is not None
    except GatewayError:
        return False


def catalog_entry(config: Config, name: str) -> dict[str, Any]:
    """One model in Anthropic's /v1/models format; display_name says where it goes."""
    decision = route(config, name)
    target = f"{decision.provider.name}/{effort.shown(decision.upstream_model, decision.effort)}"
    display = name if target.endswith(f"/{name}") or name.replace(",", "/", 1) == target else f"{name} → {target}"
    return {"type": "model", "id": name, "display_name": display, "created_at": CATALOG_CREATED_AT}


def catalog(
    config: Config,
    profile: Profile | None,
    limit: int = 20,
    after_id: str | None = None,
    before_id: str | None = None,
) -> dict[str, Any]:
    """The /v1/models page, with Anthropic's cursor pagination (limit 1-1000, after_id/before_id)."""
    names = model_names(config, profile)
    if after_id is not None:
        names = names[names.index(after_id) + 1 :] if after_id in names else []
    if before_id is not None:
        names = names[: names.index(before_id)] if before_id in names else []
        page = names[-limit:]
        has_more = len(names) > len(page)
    else:
        page = names[:limit]
        has_more = len(names) > len(page)
    data = [catalog_entry(config, n) for n in page]
    return {
        "data": data,
        "has_more": has_more,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }

"""Which provider and upstream model serve a requested model name. Pure: no mitmproxy, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from modelmux import effort
from modelmux.config import Config, Profile, Provider, Route, route_for
from modelmux.errors import GatewayError

# /v1/models needs a created_at; configured names have none, so all share one fixed,
# obviously synthetic date rather than the gateway's start time (stable across restarts).
CATALOG_CREATED_AT = "2025-01-01T00:00:00Z"


@dataclass(frozen=True)
class Decision:
    requested: str  # the model as the client wrote it
    resolved: str  # after alias resolution
    provider: Provider
    upstream_model: str
    route: Route
    effort: effort.Effort | None = None  # from a `NAME(EFFORT)` model name: overrides the client's thinking

    @property
    def rewrites_model(self) -> bool:
        return self.upstream_model != self.requested

    @property
    def restores_model(self) -> bool:
        """Whether the response's model must be set back to what the client asked for."""
        return self.rewrites_model and self.route.response_model == "requested"


def resolve_alias(config: Config, model: str) -> str:
    seen = {model}
    while model in config.aliases:
        model = config.aliases[model]
        if model in seen:  # the loader rejects loops; stay total anyway
            break
        seen.add(model)
    return model


def route(config: Config, model: str, profile: Profile | None = None) -> Decision:
    """First matching route wins. Raises GatewayError (404 no route, 403 profile forbids)."""
    resolved = resolve_alias(config, model)
    candidate = route_for(config.routes, resolved)
    if candidate is None:
        names = ", ".join(model_names(config, profile)) or "none are configured"
        raise GatewayError(
            404,
            f"model '{model}' matches no route in {config.path.name} and there is no default; "
            f"models that exist: {names}",
        )
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
    """Every name a client can ask for: aliases, exact route matches and provider model lists."""
    names = list(config.aliases)
    names += [r.pattern.text for r in config.routes if r.pattern.kind == "exact"]
    names += [slot for p in config.profiles.values() for slot in (*p.slots.values(), p.model) if slot]
    return [name for name in dict.fromkeys(names) if reachable(config, name, profile)]


def reachable(config: Config, name: str, profile: Profile | None = None) -> bool:
    try:
        route(config, name, profile)
    except GatewayError:
        return False
    return True


def catalog_entry(config: Config, name: str) -> dict[str, Any]:
    """One model in Anthropic's /v1/models format; display_name says where it goes."""
    decision = route(config, name)
    target = f"{decision.provider.name}/{effort.shown(decision.upstream_model, decision.effort)}"
    display = name if target.endswith(f"/{name}") else f"{name} → {target}"
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

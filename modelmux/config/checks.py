"""The cross-references `modelmux check` adds to what loading routes.yaml checks: every
name a client is handed (an alias, a profile's slots, model and subagent) reaches a provider, and
a profile's names reach one the profile may use. Pure: the loader leaves these to the
first request (a 404 or 403 there), which is too late for a profile's slot."""

from __future__ import annotations

from modelmux.config.types import Config, Profile, route_for


def problems(config: Config) -> list[str]:
    """One line per alias, slot, profile model or subagent model that routes nowhere or outside its
    profile, each naming its key in routes.yaml."""
    found = [p for alias in config.aliases for p in _reaches(config, f"aliases.{alias}", alias, None)]
    for profile in config.profiles.values():
        for key, model in profile.names():
            found += _reaches(config, f"profiles.{profile.name}.{key}", model, profile)
    return found


def _reaches(config: Config, where: str, name: str, profile: Profile | None) -> list[str]:
    # routing.route's own 404 lists the names that do route, which recurses when one of
    # those does not: the route is looked up as routing.route looks it up, without it.
    target = config.resolve_alias(name)
    found = route_for(config.routes, target)
    if found is None:
        shown = f"'{name}'" if target == name else f"'{name}' (→ '{target}')"
        return [f"{where}: {shown} matches no route in {config.path.name} and there is no default; "
                "add a route or a provider's models entry for it, or a default"]  # fmt: skip
    provider = found.provider
    if profile is not None and not profile.allows(provider):
        allowed = ", ".join(sorted(profile.providers or ()))
        return [f"{where}: '{name}' routes to provider '{provider}' ({found.source}), which is not in "
                f"profiles.{profile.name}.providers ({allowed}); add it there or pick a model one of them serves"]
    return []

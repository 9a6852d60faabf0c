"""routes.yaml as a replay needs it: a loaded Config moved onto the server that plays
back recorded answers, and the file's text without what would clash with the user's
own gateway. Pure: no mitmproxy, no I/O."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlsplit

import yaml

from modelmux.config.types import Config


def redirected(config: Config, origin: str) -> Config:
    """`config` with every provider's base_url on `origin` (scheme://host:port), its path
    kept: how a replay points a recorded session's providers at the server that plays
    back their answers."""
    providers = {
        name: replace(provider, base_url=origin + urlsplit(provider.base_url).path.rstrip("/"))
        for name, provider in config.providers.items()
    }
    return replace(config, providers=providers)


def origin(text: str) -> str:
    """`scheme://host[:port]` checked and without a trailing slash. Raises ValueError."""
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/") or parts.query:
        raise ValueError(f"{text!r} is not an origin; write e.g. http://127.0.0.1:8080 (scheme, host and port only)")
    try:
        parts.port
    except ValueError as e:
        raise ValueError(f"{text!r} has an invalid port ({e})") from e
    return f"{parts.scheme}://{parts.netloc}"


def without_ports(text: str) -> str:
    """A routes.yaml text whose profiles open no listener of their own: a replay runs
    beside the user's gateway, which may hold those ports. Raises ValueError on text
    that is not YAML."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ValueError(f"not valid YAML ({e})") from e
    for profile in ((data or {}).get("profiles") or {}).values():
        if isinstance(profile, dict):
            profile.pop("port", None)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)

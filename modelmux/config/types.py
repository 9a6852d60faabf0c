"""The typed configuration routes.yaml loads into (modelmux.config.loader reads and checks
the file): providers, their credentials, routes, profiles. Pure data."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from modelmux.oauth.holder import TokenHolder
from modelmux.translate import effort

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7878
DEFAULT_CONNECT_TIMEOUT = 10.0
# Claude Code's own request timeout (API_TIMEOUT_MS) defaults to 600 s; waiting longer
# for a non-streamed answer would only make the client give up first.
DEFAULT_RESPONSE_TIMEOUT = 600.0
# How long a request waits for a credential whose max_concurrent is reached before it
# gets a 429; well inside Claude Code's own timeout, so the client hears why.
DEFAULT_MAX_WAIT = 30.0
# Upstream attempts per request: enough for a second credential and a fallback
# provider, few enough that a request failing everywhere is answered quickly.
DEFAULT_MAX_ATTEMPTS = 4


@dataclass(frozen=True)
class Credential:
    label: str
    key: str = field(repr=False)  # an API key; "" for an oauth credential
    priority: int = 1  # tier: lower is used first, the next only when none of it is available
    weight: int = 1  # share of a round-robin tier
    max_concurrent: int | None = None  # None: unlimited requests in flight
    oauth: TokenHolder | None = field(default=None, repr=False, compare=False)  # a token file's live token

    @property
    def secret(self) -> str:
        """What is sent upstream: the key, or the oauth credential's current access token."""
        return self.oauth.token.access_token if self.oauth is not None else self.key

    def secrets(self) -> tuple[str, ...]:
        """Everything of this credential that must never be shown."""
        return self.oauth.secrets() if self.oauth is not None else (self.key,)

    @property
    def identity(self) -> str:
        """What stays the same while its secret changes: the key, or the token file."""
        return f"oauth:{self.oauth.path}" if self.oauth is not None else self.key


@dataclass(frozen=True)
class Auth:
    """How a credential is sent: `header: template` with `{key}` replaced."""

    header: str
    template: str

    def value(self, credential: Credential) -> str:
        return self.template.replace("{key}", credential.secret)


@dataclass(frozen=True)
class Shape:
    """How translated requests are shaped for one provider: its quirks as data."""

    endpoint: str | None = None  # None: the protocol's default path
    query: Mapping[str, str] = field(default_factory=dict, repr=False, hash=False)  # may hold secrets, as headers may
    max_tokens_field: str = "max_tokens"
    max_tokens_limit: int | None = None
    drop_fields: frozenset[str] = frozenset()
    images: bool = True
    documents: bool = False
    reasoning_effort: bool | None = None  # None: as the model's family takes it (effort.reasons)
    reasoning_history: bool = False
    reasoning_summary: str | None = "auto"  # openai-responses; None: no summaries asked


@dataclass(frozen=True)
class ModelFacts:
    """What is known of one upstream model: what routes.yaml says of it, else what its
    provider's model list reports (model_facts.py merges them); None: not known, never
    a guess."""

    context_window: int | None = None  # tokens the model holds, input and output together
    max_output: int | None = None  # the most output tokens one answer may have
    thinking: bool | None = None  # takes extended thinking / reasoning
    efforts: tuple[str, ...] | None = None  # reasoning effort levels it takes; () none
    images: bool | None = None
    documents: bool | None = None
    description: str | None = None  # shown by Claude Code's /model picker
    sources: Mapping[str, str] = field(default_factory=dict)  # fact name -> "routes.yaml" | "model list"

    def __bool__(self) -> bool:
        return any(getattr(self, name) is not None for name in FACTS)


FACTS = ("context_window", "max_output", "thinking", "efforts", "images", "documents", "description")


@dataclass(frozen=True)
class Provider:
    name: str
    protocol: str
    base_url: str
    auth: Auth | None  # None: passthrough of the client's own token, or keyless
    credentials: tuple[Credential, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold secrets (written_secrets)
    models: tuple[str, ...] = ()
    facts: Mapping[str, ModelFacts] = field(default_factory=dict)  # upstream model -> what routes.yaml says of it
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    response_timeout: float = DEFAULT_RESPONSE_TIMEOUT
    shape: Shape = field(default_factory=Shape)
    strategy: Literal["round-robin", "fill-first", "most-quota"] = "round-robin"
    affinity: bool = False  # a Claude Code session sticks to one credential (prompt cache)
    cooldown_scope: Literal["credential", "model"] = "credential"  # what a 429 blocks
    max_wait: float = DEFAULT_MAX_WAIT
    keyless: bool = False  # `auth: none`: a local server (Ollama, vLLM) that takes no credential
    # Secrets among its `headers:` and `query:` values, labelled by where they are written
    # (config.Builder.written_secrets); the values themselves are sent as they are.
    written_secrets: tuple[Credential, ...] = field(default=(), repr=False)

    @property
    def passthrough(self) -> bool:
        return self.auth is None and not self.keyless

    @property
    def secrets(self) -> tuple[Credential, ...]:
        """Everything of this provider that must never be shown: its credentials, and the
        secrets written among its headers and query parameters."""
        return (*self.credentials, *self.written_secrets)


@dataclass(frozen=True)
class ModelPattern:
    kind: Literal["exact", "glob", "regex", "any"]
    text: str
    regex: re.Pattern[str] | None = None

    def matches(self, model: str) -> bool:
        if self.kind == "any":
            return True
        if self.kind == "exact":
            return model == self.text
        assert self.regex is not None
        if self.kind == "glob":  # the whole name, as a shell glob: `claude-*` is not in `my-claude-x`
            return self.regex.match(model) is not None  # fnmatch.translate ends in \Z
        return self.regex.search(model) is not None  # a regex is searched: the user anchors it

    def __str__(self) -> str:
        return self.text if self.kind != "regex" else f"/{self.text}/"


@dataclass(frozen=True)
class Fallback:
    """Another provider a route's requests may fail over to."""

    provider: str
    model: str | None  # upstream model there; None keeps the requested one


@dataclass(frozen=True)
class Conditions:
    """What a request must be, besides its model, for a route to take it; unset: anything."""

    thinking: bool | None = None
    prompt_tokens_above: int | None = None
    tools: tuple[str, ...] = ()  # globs on a tool's name or type; any one offered
    profile: str | None = None
    header: tuple[str, str | None] | None = None  # lowercase name, and the value it must have

    def __bool__(self) -> bool:
        return any(v not in (None, ()) for v in (self.thinking, self.prompt_tokens_above, self.tools, self.profile,
                                                 self.header))

    def describe(self) -> str:
        """The conditions as the dashboard shows which rule matched: "thinking, tool web_search*"."""
        words = []
        if self.thinking is not None:
            words.append("thinking" if self.thinking else "no thinking")
        if self.prompt_tokens_above is not None:
            words.append(f"prompt > {self.prompt_tokens_above} tokens")
        if self.tools:
            words.append(f"tool {'|'.join(self.tools)}")
        if self.profile:
            words.append(f"profile {self.profile}")
        if self.header:
            words.append(f"header {self.header[0]}" + (f": {self.header[1]}" if self.header[1] is not None else ""))
        return ", ".join(words)


@dataclass(frozen=True)
class Route:
    pattern: ModelPattern
    provider: str
    model: str | None  # upstream model; None keeps the requested one
    response_model: Literal["requested", "upstream"]
    source: str  # where it was written, e.g. "routes[2]" or "providers.zai.models"
    intercept: frozenset[str] = frozenset()  # background requests answered locally
    fallback: tuple[Fallback, ...] = ()
    conditions: Conditions = field(default_factory=Conditions)

    @property
    def rule(self) -> str:
        """Which rule this is, as the dashboard names it: `routes[2] if thinking`."""
        return f"{self.source} if {self.conditions.describe()}" if self.conditions else self.source


@dataclass(frozen=True)
class Profile:
    name: str
    slots: Mapping[str, str]
    model: str | None
    providers: frozenset[str] | None  # None: every provider
    port: int | None
    subagent: str | None = None  # the model every Claude Code subagent uses

    def allows(self, provider: str) -> bool:
        return self.providers is None or provider in self.providers

    def names(self) -> list[tuple[str, str]]:
        """The model names this profile hands Claude Code, as (key under the profile, name):
        its slots, its model and its subagent model."""
        named = [(f"slots.{slot}", model) for slot, model in self.slots.items()]
        return named + [(key, model) for key, model in (("model", self.model), ("subagent", self.subagent)) if model]


# The label under which requests with server.api_key are counted (usage, /metrics, traces).
OWN_KEY_LABEL = "default"


@dataclass(frozen=True)
class ClientKey:
    """A key a client presents to the gateway (server.api_key, or one of server.api_keys),
    with what it may use: the requests it sends are counted under its label."""

    label: str
    key: str = field(repr=False)
    profiles: tuple[str, ...] | None = None  # None: any profile, or none; else in order (the first: a request's default)
    providers: frozenset[str] | None = None  # None: every provider
    rpm: int | None = None  # requests per minute, across the fleet
    admin: bool = False  # may use the gateway's own API: status, usage, resets, /metrics

    def allows(self, provider: str) -> bool:
        return self.providers is None or provider in self.providers


@dataclass(frozen=True)
class Server:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    api_key: str | None = field(default=None, repr=False)
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    api_keys: tuple[ClientKey, ...] = ()  # the labelled client keys (server.api_keys)

    @property
    def client_keys(self) -> tuple[ClientKey, ...]:
        """Every key a client may present; empty when the gateway is open."""
        own = (ClientKey(OWN_KEY_LABEL, self.api_key, admin=True),) if self.api_key else ()
        return own + self.api_keys

    @property
    def own_key(self) -> str | None:
        """The key modelmux's own commands (status, usage, run) present: server.api_key,
        else the first labelled key with admin: true."""
        return self.api_key or next((k.key for k in self.api_keys if k.admin), None)


# How long a max_concurrent slot taken through the shared state outlives the gateway
# that took it, unless that gateway renews it: a crashed gateway's slots free up after
# this (docs/team.md).
DEFAULT_LEASE_SECONDS = 15.0


@dataclass(frozen=True)
class State:
    """Where the credential pools' state lives: the state file of this one gateway
    (`file`, the default), or a Redis server that several gateways share (`redis`)."""

    backend: Literal["file", "redis"] = "file"
    url: str | None = field(default=None, repr=False)  # redis://[user:password@]host:port/db: may hold a password
    prefix: str = "modelmux"  # of every Redis key: fleets with different routes.yaml files may share one server
    lease_seconds: float = DEFAULT_LEASE_SECONDS

    @property
    def shared(self) -> bool:
        return self.backend == "redis"


@dataclass(frozen=True)
class Telemetry:
    """routes.yaml's `telemetry`: OpenTelemetry traces over OTLP/HTTP, off while
    `otlp_endpoint` is None (docs/metrics.md)."""

    otlp_endpoint: str | None = None  # the collector's traces URL (…/v1/traces)
    otlp_headers: Mapping[str, str] = field(default_factory=dict, repr=False)  # e.g. the collector's token
    content: bool = False  # message content in the spans: only when the user turns it on
    service_name: str = "modelmux"


@dataclass(frozen=True)
class Config:
    path: Path
    server: Server
    providers: Mapping[str, Provider]
    routes: tuple[Route, ...]  # explicit routes, then provider model lists, then default
    aliases: Mapping[str, str]
    profiles: Mapping[str, Profile]
    telemetry: Telemetry = Telemetry()
    source: str = field(default="", repr=False, compare=False)  # the file's text, as loaded
    state: State = field(default_factory=State)

    def resolve_alias(self, model: str) -> str:
        """The model an alias (or a chain of them) stands for; other names as they are."""
        seen = {model}
        while model in self.aliases:
            model = self.aliases[model]
            if model in seen:  # the loader rejects loops; stay total anyway
                break
            seen.add(model)
        return model

    def summary(self) -> dict[str, Any]:
        """What /healthz and `modelmux status` show: counts and names, never secrets.
        `routes` counts the entries under routes: as written; the routes each provider's
        `models` and the default add are counted apart."""
        written = sum(route.source.startswith("routes[") for route in self.routes)
        default = next((route.provider for route in self.routes if route.source == "default"), None)
        return {
            "path": str(self.path),
            "providers": sorted(self.providers),
            "routes": written,
            "provider_models": len(self.routes) - written - (default is not None),
            "default": default,
            "aliases": len(self.aliases),
            "profiles": sorted(self.profiles),
        }


def route_for(routes: Iterable[Route], name: str, holds: Callable[[Conditions], bool] | None = None) -> Route | None:
    """The first route matching `name` whose conditions `holds` (without it: routes with
    no conditions, as for a name alone); failing that, the first matching it without its
    reasoning-effort suffix (`gpt-5(high)` goes where `gpt-5` goes)."""
    base = effort.of(name)[0]
    for candidate in (name, base) if base != name else (name,):
        for route in routes:
            if route.pattern.matches(candidate) and (holds(route.conditions) if holds else not route.conditions):
                return route
    return None

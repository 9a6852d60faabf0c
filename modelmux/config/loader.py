"""routes.yaml → typed, validated configuration. The one place that reads the file.

Validation has two layers: the JSON Schema that ships beside this module (shape and
types), then cross-references the schema cannot express (a route's provider exists,
`${VAR}`s are set, ports do not collide). Every problem is reported as
`FILE: KEY.PATH: what is wrong; what to write instead`.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from collections.abc import Mapping
from dataclasses import replace
from functools import cache
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from modelmux.config import schema_messages
from modelmux.headers import CREDENTIAL_HEADERS, token_of
from modelmux.oauth.holder import TokenHolder, holder_for
from modelmux.oauth.kinds import KINDS
from modelmux.oauth.tokens import TokenFileError
from modelmux.translate import effort, effort_checks, model_paths
from modelmux.config.types import (
    Auth as Auth,
    ClientKey as ClientKey,
    Conditions as Conditions,
    Config as Config,
    Credential as Credential,
    DEFAULT_CONNECT_TIMEOUT as DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_HOST as DEFAULT_HOST,
    DEFAULT_LEASE_SECONDS as DEFAULT_LEASE_SECONDS,
    DEFAULT_MAX_ATTEMPTS as DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_WAIT as DEFAULT_MAX_WAIT,
    DEFAULT_PORT as DEFAULT_PORT,
    DEFAULT_RESPONSE_TIMEOUT as DEFAULT_RESPONSE_TIMEOUT,
    OWN_KEY_LABEL as OWN_KEY_LABEL,
    FACTS as FACTS,
    Fallback as Fallback,
    ModelFacts as ModelFacts,
    ModelPattern as ModelPattern,
    Profile as Profile,
    Provider as Provider,
    Route as Route,
    Server as Server,
    Shape as Shape,
    Telemetry as Telemetry,
    State as State,
    route_for as route_for,
)
from modelmux.translate.registry import PROTOCOLS

SLOTS = ("opus", "sonnet", "haiku", "fable")
POOLING_KEYS = ("strategy", "affinity", "cooldown_scope", "max_wait")
# The auth values that take no credentials, so have no pool: why, as a config error says it.
NO_POOL = {
    "passthrough": "a passthrough provider sends the client's own token",
    "none": "a provider with auth: none sends no credential; remove them",
}
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_REDIS_URL = re.compile(r"^(rediss?://[^/?#\s]+(/\d*)?(\?\S*)?|unix://\S+)$")
_AUTH_FORM = re.compile(r"^([A-Za-z0-9!#$%&'*+.^_`|~-]+):\s*(.*\{key\}.*)$")


class ConfigError(Exception):
    """Invalid configuration; `str()` is one line per problem, each naming file and key."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__("\n".join(f"{path}: {problem}" for problem in problems))


@cache
def schema() -> dict[str, Any]:
    return json.loads(resources.files("modelmux.config").joinpath("routes.schema.json").read_text())


def load(path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read, validate and type a routes.yaml. Raises ConfigError."""
    path = Path(path).expanduser().resolve()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(path, [f"cannot read the file ({e.strerror}); pass --config PATH"]) from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        # The problem only: str(e) quotes the line, which may hold a key.
        problem = getattr(e, "problem", None) or "cannot be parsed"
        raise ConfigError(path, [f"{where}not valid YAML ({problem})"]) from e
    return replace(parse(data, path, os.environ if environ is None else environ), source=text)


def parse(data: Any, path: Path, environ: Mapping[str, str]) -> Config:
    """Validate parsed YAML and build the typed Config. Raises ConfigError."""
    if data is None:
        raise ConfigError(path, ["the file is empty; start from the bundled routes.yaml"])
    problems = schema_messages.describe_all(jsonschema.Draft202012Validator(schema()), data)
    if problems:
        raise ConfigError(path, problems)
    builder = _Builder(data, environ)
    config = builder.build(path)
    if builder.problems:
        raise ConfigError(path, builder.problems)
    return config


class _Builder:
    """Cross-reference checks and typed construction, collecting every problem."""

    def __init__(self, data: dict[str, Any], environ: Mapping[str, str]) -> None:
        self.data = data
        self.environ = environ
        self.problems: list[str] = []

    def build(self, path: Path) -> Config:
        self.base = path.parent  # where relative token file paths start
        providers = {
            name: self.provider(name, spec) for name, spec in self.data["providers"].items()
        }
        routes = [self.route(f"routes[{i}]", spec, providers) for i, spec in enumerate(self.data.get("routes") or [])]
        routes += [
            Route(ModelPattern("exact", model), name, None, "requested", f"providers.{name}.models")
            for name, provider in providers.items()
            for model in provider.models
        ]
        default = self.data.get("default")
        if default is not None:
            spec = {"match": {"any": "*"}, **default}
            routes.append(self.route("default", spec, providers))
        server = self.server(self.data.get("server") or {})
        config = Config(
            path=path,
            server=server,
            providers=providers,
            routes=tuple(r for r in routes if r is not None),
            aliases=self.aliases(self.data.get("aliases") or {}),
            profiles=self.profiles(self.data.get("profiles") or {}, providers, server),
            telemetry=self.telemetry(self.data.get("telemetry") or {}),
            state=self.state(self.data.get("state") or {"backend": "file"}),
        )
        self.problems += effort_checks.problems(config) + model_paths.problems(config)
        for route in config.routes:
            if route.conditions.profile and route.conditions.profile not in config.profiles:
                known = ", ".join(config.profiles) or "none are configured"
                self.problems.append(f"{route.source}.profile: '{route.conditions.profile}' is not a profile; "
                                     f"known: {known}")
        self.problems += _key_scopes(config)
        return config

    def expand(self, where: str, value: str, subject: str = "") -> str:
        """Replace `${VAR}` with the environment's value; an unset variable is a problem."""

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in self.environ:
                return self.environ[name]
            self.problems.append(
                f"{where}{subject} uses ${{{name}}}, but environment variable {name} is not set; "
                f"export {name}=... before starting modelmux, or remove it"
            )
            return ""

        return _ENV_REF.sub(substitute, value)

    def provider(self, name: str, spec: dict[str, Any]) -> Provider:
        where = f"providers.{name}"
        protocol = spec["protocol"]
        default_auth, translated = PROTOCOLS[protocol].auth, PROTOCOLS[protocol].translated
        auth_text = spec.get("auth", default_auth).strip()
        auth: Auth | None = None
        if auth_text == "passthrough":
            if translated:
                self.problems.append(
                    f"{where}.auth: passthrough forwards the client's own Anthropic token, so it needs "
                    f"protocol: anthropic; write e.g. '{default_auth}' with credentials instead, "
                    "or auth: none for a local server that takes no key"
                )
            if spec.get("credentials"):
                self.problems.append(
                    f"{where}.credentials: a passthrough provider uses the client's own token; "
                    "remove the credentials or set auth to a header such as 'x-api-key: {key}'"
                )
        elif auth_text == "none":
            if spec.get("credentials"):
                self.problems.append(
                    f"{where}.credentials: a provider with auth: none sends no credential; remove the "
                    f"credentials, or set auth to a header such as '{default_auth}'"
                )
        elif form := _AUTH_FORM.match(auth_text):
            auth = Auth(form.group(1), form.group(2))
        else:
            # Not quoted: an auth written with the key itself in place of {key} is the
            # likely mistake, and this message reaches the log and /healthz.
            self.problems.append(
                f"{where}.auth: is not understood (its value is not shown: it may hold a key); write "
                "'passthrough', 'none' or 'Header-Name: value' containing {key}, e.g. 'x-api-key: {key}' or "
                "'Authorization: Bearer {key}', and put the key itself under credentials"
            )
        credentials = self.credentials(where, spec.get("credentials") or [], protocol)
        models, facts = self.models(f"{where}.models", spec.get("models") or [])
        self.check_pooling(where, spec, auth_text)
        if auth is not None and not spec.get("credentials") and auth_text:
            self.problems.append(
                f"{where}.credentials: none given; add e.g. "
                f"credentials: [{{label: main, key: '${{{name.upper().replace('-', '_').replace('.', '_')}_API_KEY}}'}}]"
                + ("" if translated else ", or set auth: passthrough to send the client's own Anthropic token")
                + ", or auth: none for a local server that takes no key (Ollama, vLLM, LM Studio, llama.cpp)"
            )
        return Provider(
            name=name,
            protocol=protocol,
            base_url=self.expand(f"{where}.base_url", spec["base_url"]).rstrip("/"),
            auth=auth,
            credentials=credentials,
            headers={
                header: self.expand(f"{where}.headers.{header}", value)
                for header, value in (spec.get("headers") or {}).items()
            },
            models=models,
            facts=facts,
            connect_timeout=float(spec.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT)),
            response_timeout=float(spec.get("response_timeout", DEFAULT_RESPONSE_TIMEOUT)),
            shape=self.shape(where, spec),
            strategy=spec.get("strategy", "round-robin"),
            affinity=spec.get("affinity", False),
            cooldown_scope=spec.get("cooldown_scope", "credential"),
            max_wait=float(spec.get("max_wait", DEFAULT_MAX_WAIT)),
            keyless=auth_text == "none",
            written_secrets=self.written_secrets(name, spec),
        )

    def written_secrets(self, name: str, spec: dict[str, Any]) -> tuple[Credential, ...]:
        """The secrets among a provider's `headers:` and `query:` values: whatever a
        `${VAR}` puts there (a key kept out of the file, as credentials' are), and the
        whole value of a header named like a credential (`api-key`, `Authorization`).
        Other values (`HTTP-Referer: https://my.app`, an API version) are not secret, and
        replacing them in answers would mangle text that mentions them."""
        found = []
        for part in ("headers", "query"):
            for field_name, value in (spec.get(part) or {}).items():
                label = f"{name}.{part}.{field_name}"
                found += [Credential(label, self.environ[var]) for var in _ENV_REF.findall(value)
                          if self.environ.get(var)]
                if part == "headers" and field_name.lower() in CREDENTIAL_HEADERS:
                    whole = _ENV_REF.sub(lambda m: self.environ.get(m.group(1), ""), value)
                    found.append(Credential(label, token_of(whole)))
        return tuple(credential for credential in found if credential.key)

    def models(self, where: str, entries: list[str | dict[str, Any]]) -> tuple[tuple[str, ...], dict[str, ModelFacts]]:
        """A provider's model names, and what routes.yaml says of each (its facts), by the
        name the upstream receives: `gpt-5(high)`'s facts are gpt-5's."""
        names: list[str] = []
        facts: dict[str, ModelFacts] = {}
        written: dict[str, str] = {}
        for i, entry in enumerate(entries):
            at = f"{where}[{i}]"
            if isinstance(entry, str):
                names.append(entry)
                continue
            names.append(entry["name"])
            found = {name: _fact(name, entry[name]) for name in FACTS if name in entry}
            if not found:
                continue
            upstream = effort.of(entry["name"])[0]
            if upstream in written:
                self.problems.append(f"{at}: the facts of '{upstream}' are already written at {written[upstream]}; "
                                     "write them once")
                continue
            written[upstream] = at
            self.check_facts(at, found)
            facts[upstream] = ModelFacts(**found, sources={name: "routes.yaml" for name in found})
        return tuple(names), facts

    def check_facts(self, where: str, found: dict[str, Any]) -> None:
        """Facts that contradict each other are a mistake in one of them."""
        window, output = found.get("context_window"), found.get("max_output")
        if window is not None and output is not None and output > window:
            self.problems.append(f"{where}.max_output: {output} is more than its context_window {window}, which "
                                 "holds input and output together; lower max_output or raise context_window")
        if found.get("thinking") is False and found.get("efforts"):
            self.problems.append(f"{where}.efforts: a model with thinking: false takes no reasoning effort; "
                                 "remove efforts (or write []), or set thinking: true")

    def shape(self, where: str, spec: dict[str, Any]) -> Shape:
        protocol = PROTOCOLS[spec["protocol"]]
        for key in sorted(key for key in Shape.__dataclass_fields__ if key in spec):
            if key not in protocol.shaping:
                takers = ", ".join(p.name for p in PROTOCOLS.values() if key in p.shaping)
                self.problems.append(
                    f"{where}.{key}: applies only to protocol {takers}, not {protocol.name}; remove it"
                    + ("" if protocol.translated else "; an anthropic provider gets the request as the client sent it")
                )
        summary = spec.get("reasoning_summary", "auto")
        return Shape(
            endpoint=spec.get("endpoint"),
            query={name: self.expand(f"{where}.query.{name}", value) for name, value in (spec.get("query") or {}).items()},
            max_tokens_field=spec.get("max_tokens_field", "max_tokens"),
            max_tokens_limit=spec.get("max_tokens_limit"),
            drop_fields=frozenset(spec.get("drop_fields") or ()),
            images=spec.get("images", True),
            documents=spec.get("documents", protocol.shape.documents),  # the protocol's own default
            reasoning_effort=spec.get("reasoning_effort", protocol.shape.reasoning_effort),
            reasoning_history=spec.get("reasoning_history", False),
            reasoning_summary=None if summary == "none" else summary,
        )

    def check_pooling(self, where: str, spec: dict[str, Any], auth_text: str) -> None:
        """Pool settings that would silently do nothing are mistakes worth naming."""
        pooling = sorted(key for key in POOLING_KEYS if key in spec)
        if auth_text in NO_POOL and pooling:
            self.problems.append(
                f"{where}: {', '.join(pooling)} only apply to providers with credentials; {NO_POOL[auth_text]}"
            )
        if (strategy := spec.get("strategy")) in ("fill-first", "most-quota"):
            for i, credential in enumerate(spec.get("credentials") or []):
                if "weight" in credential:
                    self.problems.append(
                        f"{where}.credentials[{i}].weight: weights only apply to strategy round-robin; "
                        f"remove it, or use priority to order credentials under {strategy}"
                    )

    def credentials(self, where: str, specs: list[dict[str, Any]], protocol: str) -> tuple[Credential, ...]:
        seen: set[str] = set()
        result = []
        for i, spec in enumerate(specs):
            label, at = spec["label"], f"{where}.credentials[{i}]"
            if label in seen:
                self.problems.append(f"{at}.label: '{label}' is used twice; labels must be unique")
            seen.add(label)
            if ("key" in spec) == ("oauth" in spec):
                self.problems.append(f"{at}: give either key (an API key) or oauth (a token file), not "
                                     f"{'both' if 'key' in spec else 'neither'}")
                continue
            key, holder = "", None
            if "key" in spec:
                key = self.expand(f"{at}.key", spec["key"], f" (credential '{label}')")
            elif (holder := self.token_file(f"{at}.oauth", spec["oauth"], protocol)) is None:
                continue
            result.append(
                Credential(
                    label, key,
                    priority=spec.get("priority", 1),
                    weight=spec.get("weight", 1),
                    max_concurrent=spec.get("max_concurrent"),
                    oauth=holder,
                )
            )
        return tuple(result)

    def token_file(self, where: str, text: str, protocol: str) -> TokenHolder | None:
        """The live token of an oauth credential's file, which must be private and of a
        kind this provider's protocol can use."""
        path = Path(self.expand(where, text)).expanduser()
        path = path if path.is_absolute() else self.base / path
        try:
            holder = holder_for(path)
        except TokenFileError as e:
            self.problems.append(f"{where}: {e}")
            return None
        kind = KINDS.get(holder.kind)
        if kind is None:
            self.problems.append(f"{where}: {path} holds a '{holder.kind}' login, which modelmux does not know; "
                                 f"known: {', '.join(KINDS)}")
        elif kind.protocol != protocol:
            self.problems.append(f"{where}: {path} holds a {kind.name} login ({kind.description}), which serves "
                                 f"protocol {kind.protocol}; put it under a provider with that protocol")
        elif missing := [f for f in kind.needs if getattr(holder.token, f) is None]:
            fix = (f'add "project_id": "YOUR-PROJECT" (the Google Cloud project your {kind.name} login uses) to it'
                   if missing == ["project_id"] else f"log in again with `modelmux login {kind.name}`")
            self.problems.append(f"{where}: {path} has no {', '.join(missing)}, which {kind.name} requests need; {fix}")
        else:
            return holder
        return None

    def route(self, where: str, spec: dict[str, Any], providers: Mapping[str, Provider]) -> Route | None:
        provider = spec["provider"]
        if provider not in providers:
            self.problems.append(
                f"{where}.provider: '{provider}' is not a provider; known: {', '.join(providers)}"
            )
            return None
        pattern = self.pattern(f"{where}.match", spec["match"])
        if pattern is None:
            return None
        return Route(
            pattern, provider, spec.get("model"), spec.get("response_model", "requested"), where,
            frozenset(spec.get("intercept") or ()), self.fallback(where, spec, providers), conditions(spec),
        )

    def fallback(self, where: str, spec: dict[str, Any], providers: Mapping[str, Provider]) -> tuple[Fallback, ...]:
        result: list[Fallback] = []
        seen = {spec["provider"]}
        for i, item in enumerate(spec.get("fallback") or ()):
            entry = Fallback(item, None) if isinstance(item, str) else Fallback(item["provider"], item.get("model"))
            if entry.provider not in providers:
                self.problems.append(
                    f"{where}.fallback[{i}]: '{entry.provider}' is not a provider; known: {', '.join(providers)}"
                )
            elif entry.provider in seen:
                self.problems.append(
                    f"{where}.fallback[{i}]: provider '{entry.provider}' is already tried earlier for this route "
                    "(a provider's other credentials are tried before its fallbacks); name a different provider"
                )
            else:
                result.append(entry)
            seen.add(entry.provider)
        return tuple(result)

    def pattern(self, where: str, match: str | dict[str, str]) -> ModelPattern | None:
        if isinstance(match, str):
            kind, text = ("glob" if ("*" in match or "?" in match) else "exact"), match
        else:
            ((kind, text),) = match.items()
        if kind in ("exact", "any"):
            return ModelPattern(kind, text)  # type: ignore[arg-type]
        source = fnmatch.translate(text) if kind == "glob" else text
        try:
            return ModelPattern(kind, text, re.compile(source))  # type: ignore[arg-type]
        except re.error as e:
            self.problems.append(f"{where}: {text!r} is not a valid regular expression ({e})")
            return None

    def server(self, spec: dict[str, Any]) -> Server:
        api_key = spec.get("api_key")
        api_key = self.expand("server.api_key", api_key) if api_key else None
        return Server(
            host=spec.get("host", DEFAULT_HOST),
            port=spec.get("port", DEFAULT_PORT),
            api_key=api_key,
            max_attempts=spec.get("max_attempts", DEFAULT_MAX_ATTEMPTS),
            api_keys=self.client_keys(spec.get("api_keys") or {}, api_key),
        )

    def client_keys(self, spec: dict[str, dict[str, Any]], api_key: str | None) -> tuple[ClientKey, ...]:
        """server.api_keys: each label's key and what it may use. A key is never quoted."""
        keys: list[ClientKey] = []
        owners = {api_key: "server.api_key"} if api_key else {}
        for label, each in spec.items():
            where = f"server.api_keys.{label}"
            if label == OWN_KEY_LABEL and api_key:
                self.problems.append(f"{where}: '{OWN_KEY_LABEL}' is the label of server.api_key's requests; "
                                     "name this key otherwise")
                continue
            key = self.expand(f"{where}.key", each["key"]).strip()
            if not key:
                continue  # its unset variable is the problem already said
            if key in owners:
                self.problems.append(f"{where}.key: is the same key as {owners[key]}'s; give each label its own key, "
                                     "or its requests cannot be told apart")
                continue
            owners[key] = where
            keys.append(ClientKey(
                label, key,
                profiles=tuple(each["profiles"]) if "profiles" in each else None,
                providers=frozenset(each["providers"]) if "providers" in each else None,
                rpm=each.get("rpm"),
                admin=each.get("admin", False),
            ))
        return tuple(keys)

    def telemetry(self, spec: dict[str, Any]) -> Telemetry:
        endpoint = spec.get("otlp_endpoint")
        if endpoint is not None:
            endpoint = self.expand("telemetry.otlp_endpoint", endpoint)
            if missing := otel_missing():
                self.problems.append(
                    f"telemetry.otlp_endpoint: traces need the OpenTelemetry SDK, and {missing} is not installed; "
                    "install modelmux's otel extra (pip install 'modelmux[otel]'; pipx: pipx inject modelmux "
                    "opentelemetry-sdk opentelemetry-exporter-otlp-proto-http), or remove telemetry.otlp_endpoint"
                )
            # As OTEL_EXPORTER_OTLP_ENDPOINT: a bare collector address gets the traces path.
            scheme, _, rest = endpoint.partition("://")
            if "/" not in rest.rstrip("/"):
                endpoint = f"{scheme}://{rest.rstrip('/')}/v1/traces"
        headers = {name: self.expand(f"telemetry.otlp_headers.{name}", value)
                   for name, value in (spec.get("otlp_headers") or {}).items()}
        return Telemetry(endpoint, headers, spec.get("content", False), spec.get("service_name", "modelmux"))

    def state(self, spec: dict[str, Any]) -> State:
        """Where the pools' state lives. The URL is never quoted: it may hold a password."""
        backend = spec["backend"]
        if backend == "file":
            extra = sorted(key for key in ("url", "prefix", "lease_seconds") if key in spec)
            if extra:
                many = len(extra) > 1
                self.problems.append(f"state: {', '.join(extra)} only appl{'y' if many else 'ies'} to backend: redis; "
                                     f"remove {'them' if many else 'it'}, or set backend: redis")
            return State()
        if "url" not in spec:
            self.problems.append('state.url: backend: redis needs the server\'s address; add url: "${MODELMUX_REDIS_URL}" '
                                 "and export MODELMUX_REDIS_URL=redis://HOST:6379/0 (redis://:PASSWORD@HOST:6379/0 "
                                 "with a password), or set backend: file")
            return State()
        url = self.expand("state.url", spec["url"]).strip()
        if url and not _REDIS_URL.match(url):
            self.problems.append("state.url: is not a Redis URL (its value is not shown: it may hold a password); "
                                 "write redis://HOST:6379/0, rediss://HOST:6380/0 for TLS or unix:///PATH/redis.sock")
        return State("redis", url, spec.get("prefix", "modelmux"), float(spec.get("lease_seconds", DEFAULT_LEASE_SECONDS)))

    def aliases(self, spec: dict[str, str]) -> dict[str, str]:
        for alias in spec:
            chain = [alias]
            while chain[-1] in spec:
                chain.append(spec[chain[-1]])
                if chain[-1] in chain[:-1]:
                    self.problems.append(
                        f"aliases.{alias}: the aliases form a loop ({' → '.join(chain)}); point one at a model name"
                    )
                    break
        return dict(spec)

    def profiles(
        self, specs: dict[str, dict[str, Any]], providers: Mapping[str, Provider], server: Server
    ) -> dict[str, Profile]:
        ports = {server.port: "server.port"}
        result = {}
        for name, spec in specs.items():
            where = f"profiles.{name}"
            allowed = spec.get("providers")
            for i, provider in enumerate(allowed or []):
                if provider not in providers:
                    self.problems.append(
                        f"{where}.providers[{i}]: '{provider}' is not a provider; known: {', '.join(providers)}"
                    )
            port = spec.get("port")
            if port is not None:
                if port in ports:
                    self.problems.append(f"{where}.port: {port} is already used by {ports[port]}; pick another port")
                ports[port] = f"{where}.port"
            result[name] = Profile(
                name=name,
                slots=dict(spec.get("slots") or {}),
                model=spec.get("model"),
                providers=frozenset(allowed) if allowed else None,
                port=port,
                subagent=spec.get("subagent"),
            )
        return result


# What traces need beyond modelmux's own dependencies (the `otel` extra).
OTEL_DISTRIBUTIONS = ("opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http")


def otel_missing() -> str | None:
    """The first of the `otel` extra's packages that is not installed (read from the
    installed distributions: the core imports no OpenTelemetry)."""
    for name in OTEL_DISTRIBUTIONS:
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            return name
    return None


def _fact(name: str, value: Any) -> Any:
    """A fact as ModelFacts holds it (schema-checked already): efforts as a tuple."""
    return tuple(value) if name == "efforts" else value


def conditions(spec: dict[str, Any]) -> Conditions:
    """A route's conditions besides its model (schema-checked already)."""
    tools = spec.get("tool")
    header = spec.get("header")
    name, _, value = header.partition(":") if header else ("", "", "")
    return Conditions(
        thinking=spec.get("thinking"),
        prompt_tokens_above=spec.get("prompt_tokens_above"),
        tools=tuple([tools] if isinstance(tools, str) else tools or ()),
        profile=spec.get("profile"),
        header=(name.strip().lower(), value.strip() if value.strip() else None) if header else None,
    )


def variables(text: str) -> list[str]:
    """The environment variables a routes.yaml text uses (`${VAR}`), each once, in order."""
    return list(dict.fromkeys(_ENV_REF.findall(text)))


def _key_scopes(config: Config) -> list[str]:
    """The profiles and providers server.api_keys name, which must exist."""
    problems = []
    for key in config.server.api_keys:
        where = f"server.api_keys.{key.label}"
        for field_name, names, known in (("profiles", key.profiles, config.profiles),
                                         ("providers", key.providers, config.providers)):
            for name in sorted(set(names or ()) - set(known)):
                problems.append(f"{where}.{field_name}: '{name}' is not one of {config.path.name}'s {field_name}; "
                                f"known: {', '.join(known) or 'none are configured'}")
    return problems

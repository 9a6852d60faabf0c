"""Router: sends each /v1/messages request to the upstream routes.yaml chooses."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import replace

from mitmproxy import http

from modelmux.translate import effort, messages, validation
from modelmux import routing
from modelmux.attempt import exchange
from modelmux.addons import vault
from modelmux.addons.answers import JSON, answer, answer_error, answer_json, as_kept, header_fields, request_path
from modelmux.addons.credentials import Credentials
from modelmux.addons.direct import Direct, Refused
from modelmux.addons.discovery import Discovery
from modelmux.addons.failover import Plan
from modelmux.addons.internals import flows_kept
from modelmux.addons.notes import notes_of, read_notes, start_notes
from modelmux.addons.relay import Relay
from modelmux.addons.settings import Settings
from modelmux.addons.urls import point
from modelmux.attempt import GiveUp
from modelmux.config.types import ClientKey, Credential, Provider
from modelmux.errors import GatewayError
from modelmux.headers import OWN_HEADER_PREFIX, client_credential
from modelmux.credentials.pools import session_of
from modelmux.translate.registry import PROTOCOLS
from modelmux.secrets import label_of, redacted, scrub, shown_headers
from modelmux.translate.token_estimate import estimate_input_tokens

logger = logging.getLogger(__name__)

MESSAGE_PATHS = {"/v1/messages", "/v1/messages/count_tokens"}
SERVED = "POST /v1/messages, POST /v1/messages/count_tokens, GET /v1/models, GET /v1/models/{id} and GET /healthz"


class Router:
    """Routes by the body's model: rewrites URL, model and auth, and keeps the answer's
    model what the client asked for. Streams stream: SSE is never buffered. A request
    for one JSON answer, and a stream with somewhere to fail over to (a pool of several
    credentials, or fallback providers), go through the Relay; a stream with a single
    possible upstream is sent by mitmproxy itself."""

    def __init__(self, settings: Settings, credentials: Credentials, direct: Direct, relay: Relay,
                 discovery: Discovery) -> None:
        self.settings = settings
        self.credentials = credentials
        self.direct = direct
        self.relay = relay
        self.discovery = discovery

    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        try:
            if flow.request.method == "POST" and request_path(flow) in MESSAGE_PATHS:
                await self.route_message(flow)
            else:
                await self.forward_other(flow)
        except GatewayError as e:
            answer_error(flow, e)
        except Exception:
            # A flow left alone here would go to the reverse target unrouted, with the
            # client's token: answer instead, and keep the traceback for the log.
            logger.exception("routing %s %s failed", flow.request.method, request_path(flow))  # a query may hold a key
            answer_error(flow, GatewayError(500, "modelmux failed to route this request (internal error; see the gateway log)"))

    async def route_message(self, flow: http.HTTPFlow) -> None:
        config = self.settings.config
        assert config
        profile = self.settings.profile_of(flow)
        body, model_at = _message_body(flow)
        client = vault.real_headers(flow.request)
        facts = routing.Facts(body, client, profile.name if profile else None)
        decision = routing.route(config, body["model"], profile, facts)
        key = self.settings.client_key(flow)
        if key is not None and not key.allows(decision.provider.name):
            raise _not_for(key, f"model '{body['model']}' routes to '{decision.provider.name}'")
        if "warmup" in decision.route.intercept and messages.is_warmup(body):
            return _answer_warmup(flow, decision, body)
        provider = decision.provider
        path = request_path(flow)  # the client's, before the upstream's base path is put in front
        notes = start_notes(flow, {
            "requested_model": decision.requested,
            "model": effort.shown(decision.upstream_model, decision.effort),
            "provider": provider.name,
            "route": decision.route.rule,
            "profile": profile.name if profile else None,
            "protocol": provider.protocol,
            "connect_timeout": provider.connect_timeout,
            "response_timeout": provider.response_timeout,
        })
        if path == exchange.COUNT_TOKENS and PROTOCOLS[provider.protocol].translated:
            exchange.check_effort(decision)
            # Each translated protocol counts differently, if at all (Chat Completions has
            # no endpoint for it); the estimate answers at once, which Claude Code needs.
            answer_json(flow, 200, {"input_tokens": estimate_input_tokens(body)})
            flow.comment = f"{_head(notes)} · count_tokens answered locally (estimate)"
            return
        # Each candidate with what is known of its model, which caps the output it is asked for.
        candidates = [replace(c, model_facts=self.discovery.facts(c)) for c in routing.candidates(config, decision, profile)
                      if key is None or key.allows(c.provider.name)]
        decision = candidates[0]
        if flows_kept():
            notes["client_request"] = _as_sent_by_client(flow.request)
        session = session_of(client, body) if any(c.provider.affinity for c in candidates) else None
        # Oauth credentials are always sent by the relay: it refreshes their tokens, and
        # sends a request again after a 401 that a refresh can cure.
        oauth = any(c.oauth is not None for c in provider.credentials)
        # Without the Vault's touchpoint mitmproxy could only send credentials redacted.
        if oauth or not vault.on_the_wire() or (
            path != exchange.COUNT_TOKENS and (len(candidates) > 1 or self.credentials.pooled(provider.name) > 1)
        ):
            return self._relay(flow, candidates, body, model_at, client, session, config.server.max_attempts)
        if path != exchange.COUNT_TOKENS and not body.get("stream"):
            # One JSON answer: the relay's too, with the one attempt mitmproxy would make. Its
            # attempt runs in a last request hook and answers the flow, so every JSON answer
            # is read, translated and judged by one driver, the Failover.
            return self._relay(flow, candidates, body, model_at, client, session, 1)
        try:
            lease = await self.direct.begin(flow, decision, session, client_credential(client),
                                            vault.client_credentials(flow.request))
        except Refused as e:
            return _answer_refused(flow, e.step)
        try:
            outgoing = exchange.prepare(
                decision, body, flow.request.content or b"", path, _query(flow),
                client, lease.credential if lease else None, model_at,
            )
        except BaseException:
            self.direct.abandon(flow)
            raise
        _apply(flow, outgoing, provider, lease.credential if lease else None)
        notes["credential"] = label_of(provider, lease.credential if lease else None)
        notes["restore_model"] = outgoing.restore
        if outgoing.translation is not None:
            notes["translation"] = outgoing.translation
            # A stream (a JSON answer is the relay's): its estimate is worked out once the
            # request is on its way, while the upstream thinks.
            asyncio.get_running_loop().call_soon(exchange.estimate, outgoing.translation, body)
        flow.comment = f"{_head(notes)} · {notes['credential']}" + (f" · profile {profile.name}" if profile else "")

    def _relay(self, flow: http.HTTPFlow, candidates: list[routing.Decision], body: dict,
               model_at: tuple[int, int] | None, client: dict[str, str], session: str | None,
               max_attempts: int) -> None:
        request = flow.request
        plan = Plan(
            flow, candidates, body, request.content or b"", request_path(flow), _query(flow),
            [(name.decode("latin-1"), value.decode("latin-1")) for name, value in vault.real_fields(request)],
            client, session, max_attempts, model_at, vault.client_credentials(request),
        )
        notes = notes_of(flow)
        notes["relay"] = True
        notes["fallback"] = [f"{c.provider.name}/{c.upstream_model}" for c in candidates[1:]]
        flow.comment = f"{_head(notes)} · failover relay"
        if plan.stream:
            self.relay.register(flow, plan)
        else:  # one JSON answer: the attempts run in the last request hook, and answer the flow
            self.relay.answer_later(flow, plan)

    async def forward_other(self, flow: http.HTTPFlow) -> None:
        """Paths modelmux does not route by model go to a passthrough default, unchanged:
        for Anthropic itself modelmux is then a transparent reverse proxy."""
        if not flow.request.path.startswith("/"):  # `OPTIONS *`: the URL it would be sent to has no path
            raise GatewayError(400, f"request target '{flow.request.path}' is not a path; modelmux serves {SERVED}")
        config = self.settings.config
        assert config
        profile = self.settings.profile_of(flow)
        default = config.routes[-1] if config.routes and config.routes[-1].source == "default" else None
        provider = config.providers[default.provider] if default else None
        if provider is None or not provider.passthrough or (profile and not profile.allows(provider.name)):
            raise GatewayError(
                404, f"modelmux does not serve {flow.request.method} {request_path(flow)}; it serves {SERVED}"
            )
        key = self.settings.client_key(flow)
        if key is not None and not key.allows(provider.name):
            raise _not_for(key, f"{flow.request.method} {request_path(flow)} goes to '{provider.name}'")
        as_sent = _as_sent_by_client(flow.request) if flows_kept() else None
        path = request_path(flow)
        client = vault.real_headers(flow.request)
        _send(flow, provider, client)
        if vault.pending(flow.request) and not vault.on_the_wire():  # the relay only sends messages
            raise GatewayError(500, f"modelmux cannot forward {flow.request.method} {path} with the client's "
                                    "credentials on this mitmproxy version (see the gateway log); install a verified one")
        if as_sent is not None:
            notes_of(flow)["client_request"] = as_sent
        # The answer is read as any attempt's is: an error in Anthropic's words.
        candidate = routing.Decision(path, path, provider, "", default)
        await self.direct.begin(flow, candidate, None, client_credential(client), vault.client_credentials(flow.request))
        flow.comment = f"passthrough {flow.request.method} {request_path(flow)} → {provider.name}"

    def response(self, flow: http.HTTPFlow) -> None:
        response = flow.response
        assert response
        notes = read_notes(flow)
        if not response.stream and "provider" in notes and not notes.get("local") and flows_kept():
            # The upstream's own answer, before the addons after this one rewrite it
            # (translation, error envelopes): the Dashboard keeps it if it differs.
            notes["upstream_answer"] = as_kept(response, response.content)


def _not_for(key: ClientKey, what: str) -> GatewayError:
    """A request its client key may not send where it would go."""
    return GatewayError(403, f"the key '{key.label}' may use providers {', '.join(sorted(key.providers or ()))} "
                             f"only (server.api_keys.{key.label}.providers), and {what}")


def _answer_refused(flow: http.HTTPFlow, step: GiveUp) -> None:
    """No credential could take the request (the pool's error, with its wait)."""
    answer(flow, step.status, step.body, {**JSON, **step.headers})
    notes_of(flow)["error"] = step.message
    flow.marked = ":warning:"
    flow.comment = f"modelmux {step.status}: {step.message}"


def _answer_warmup(flow: http.HTTPFlow, decision: routing.Decision, body: dict) -> None:
    """Claude Code's cache-warming request costs quota and primes nothing on a provider
    without Anthropic's prompt cache; routes with `intercept: [warmup]` answer it here."""
    message = messages.text_message(decision.requested, "OK")
    if body.get("stream"):
        answer(flow, 200, messages.as_events(message), {"content-type": "text/event-stream"})
    else:
        answer_json(flow, 200, message)
    notes_of(flow)["intercepted"] = True
    flow.marked = ":zap:"
    flow.comment = f"intercepted: warmup for {decision.requested} [{decision.route.rule}], answered locally"


def _message_body(flow: http.HTTPFlow) -> tuple[dict, tuple[int, int] | None]:
    """The client's body, when it is a Messages request (validation.py), and where its
    model is in its bytes; else its 400."""
    try:
        body, model_at = validation.parse_placed(flow.request.content or b"")
        validation.check(body)
    except validation.Malformed as e:
        raise GatewayError(400, str(e)) from None
    return body, model_at


def _as_sent_by_client(request: http.Request) -> dict:
    """The client's request as it came (its token redacted), for the record."""
    return {"method": request.method, "path": request.path, "body": request.content,
            "headers": shown_headers(header_fields(request.headers), None, None)}


def _send(flow: http.HTTPFlow, provider: Provider, client: dict[str, str]) -> None:
    """Point a request modelmux does not route by model at a passthrough provider."""
    point(flow.request, provider.base_url + flow.request.path)
    start_notes(flow, {
        "provider": provider.name,
        "connect_timeout": provider.connect_timeout,
        "response_timeout": provider.response_timeout,
    })
    headers = flow.request.headers
    for name in {n.lower() for n in headers if n.lower().startswith(OWN_HEADER_PREFIX)}:
        del headers[name]
    exchange.check_client_token(provider, client)
    for name, value in provider.headers.items():
        _set_header(flow.request, name, value, provider.written_secrets)


def _apply(flow: http.HTTPFlow, outgoing: exchange.Outgoing, provider: Provider, credential: Credential | None) -> None:
    """Put `outgoing` on the flow, the credential and the provider's written secrets
    only in their redacted form: the Vault has mitmproxy send the real ones."""
    request = flow.request
    auth = exchange.auth_header(provider, credential)
    point(request, outgoing.url)
    path, mark, query = request.path.partition("?")
    if mark and (shown := scrub(query, provider.written_secrets)) != query:  # as scrub, not a short value
        vault.seal_path(request, request.path, path + mark + shown)
    if outgoing.remove:
        # One pass over the fields: a pop per name scans them twice each, which cost
        # 80 µs for the dozen headers a third-party upstream does not get.
        remove = outgoing.remove
        fields = request.headers.fields
        kept = tuple(field for field in fields if field[0].decode("latin-1").lower() not in remove)
        if len(kept) != len(fields):
            request.headers.fields = kept
    for name, value in outgoing.set.items():
        if credential is not None and name == auth:
            vault.seal(request, name, value, value.replace(credential.secret, redacted(credential)))
        else:
            _set_header(request, name, value, provider.written_secrets)
    if outgoing.content != request.content:
        request.content = outgoing.content


def _set_header(request: http.Request, name: str, value: str, secrets: Iterable[Credential]) -> None:
    """Set a header, sealed if it holds one of `secrets`."""
    if (shown := _shown(value, secrets)) != value:
        vault.seal(request, name, value, shown)
    else:
        request.headers[name] = value


def _shown(value: str, secrets: Iterable[Credential]) -> str:
    """A header's value with each of `secrets` redacted, however short (unlike scrub:
    the header holds the secret, so nothing else in it is mangled)."""
    for secret in secrets:
        value = value.replace(secret.key, redacted(secret))
    return value


def _head(notes: dict) -> str:
    return f"{notes['requested_model']} → {notes['provider']}/{notes['model']} [{notes['route']}]"


def _query(flow: http.HTTPFlow) -> str:
    return flow.request.path.partition("?")[2]

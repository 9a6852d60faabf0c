"""Router: sends each /v1/messages request to the upstream routes.yaml chooses."""

from __future__ import annotations

import json
import logging

from mitmproxy import http

from modelmux import messages, routing
from modelmux.addons.answers import answer, answer_error, answer_json, request_path, upstream_json
from modelmux.addons.streams import as_stream
from modelmux.addons.translator import Translator, translation_of
from modelmux.addons.settings import Settings
from modelmux.config import Credential, Provider
from modelmux.credentials import RoundRobin
from modelmux.errors import GatewayError
from modelmux.headers import CLIENT_AUTH_HEADERS, OWN_HEADER_PREFIX, PLACEHOLDER_TOKEN, client_tokens
from modelmux.passthrough import ModelRestorer, restore_model_json

logger = logging.getLogger(__name__)

MESSAGE_PATHS = {"/v1/messages", "/v1/messages/count_tokens"}
SERVED = "POST /v1/messages, POST /v1/messages/count_tokens, GET /v1/models and GET /healthz"


class Router:
    """Routes by the body's model: rewrites URL, model and auth, and keeps the answer's
    model what the client asked for. Streams stream: SSE is never buffered."""

    def __init__(self, settings: Settings, translator: Translator) -> None:
        self.settings = settings
        self.translator = translator
        self.credentials = RoundRobin()

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        try:
            if flow.request.method == "POST" and request_path(flow) in MESSAGE_PATHS:
                self.route_message(flow)
            else:
                self.forward_other(flow)
        except GatewayError as e:
            answer_error(flow, e)
        except Exception:
            # A flow left alone here would go to the reverse target unrouted, with the
            # client's token: answer instead, and keep the traceback for the log.
            logger.exception("routing %s %s failed", flow.request.method, flow.request.path)
            answer_error(flow, GatewayError(500, "modelmux failed to route this request (internal error; see the gateway log)"))

    def route_message(self, flow: http.HTTPFlow) -> None:
        config = self.settings.config
        assert config
        profile = self.settings.profile_of(flow)
        body = _message_body(flow)
        decision = routing.route(config, body["model"], profile)
        if "warmup" in decision.route.intercept and messages.is_warmup(body):
            return _answer_warmup(flow, decision, body)
        provider = decision.provider
        credential = self.credentials.pick(provider)
        path = request_path(flow)  # the client's, before the upstream's base path is put in front
        _send(flow, provider, credential)
        translated = provider.protocol != "anthropic"
        flow.metadata["modelmux"].update({
            "requested_model": decision.requested,
            "model": decision.upstream_model,
            "provider": provider.name,
            "route": decision.route.source,
            "credential": credential.label if credential else "client token (passthrough)",
            "profile": profile.name if profile else None,
            "restore_model": decision.requested if decision.restores_model and not translated else None,
        })
        flow.comment = (
            f"{decision.requested} → {provider.name}/{decision.upstream_model} "
            f"[{decision.route.source}] · {flow.metadata['modelmux']['credential']}"
            + (f" · profile {profile.name}" if profile else "")
        )
        if translated:
            self.translator.translate_request(flow, decision, body, path)
        elif decision.rewrites_model:
            body["model"] = decision.upstream_model
            flow.request.content = upstream_json(body)
        if decision.restores_model and not translated:
            # The answer gets rewritten, which needs plain bytes, not gzip.
            flow.request.headers["accept-encoding"] = "identity"

    def forward_other(self, flow: http.HTTPFlow) -> None:
        """Paths modelmux does not route by model go to a passthrough default, unchanged:
        for Anthropic itself modelmux is then a transparent reverse proxy."""
        config = self.settings.config
        assert config
        profile = self.settings.profile_of(flow)
        default = config.routes[-1] if config.routes and config.routes[-1].source == "default" else None
        provider = config.providers[default.provider] if default else None
        if provider is None or not provider.passthrough or (profile and not profile.allows(provider.name)):
            raise GatewayError(
                404, f"modelmux does not serve {flow.request.method} {request_path(flow)}; it serves {SERVED}"
            )
        _send(flow, provider, None)
        flow.comment = f"passthrough {flow.request.method} {request_path(flow)} → {provider.name}"

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        response = flow.response
        assert response
        if response.status_code >= 400 or not _is_event_stream(response) or translation_of(flow) is not None:
            return  # errors are buffered and checked whole (Failures); translations stream in Translator
        restore = flow.metadata.get("modelmux", {}).get("restore_model")
        if restore:
            # The rewritten message_start differs in length from the original.
            response.headers.pop("content-length", None)
            response.headers["transfer-encoding"] = "chunked"
            response.stream = as_stream(ModelRestorer(restore))
        else:
            response.stream = True

    def response(self, flow: http.HTTPFlow) -> None:
        response = flow.response
        assert response
        restore = flow.metadata.get("modelmux", {}).get("restore_model")
        if not restore or response.stream or response.status_code >= 400:
            return
        if rewritten := restore_model_json(response.content or b"", restore):
            response.content = rewritten


def _answer_warmup(flow: http.HTTPFlow, decision: routing.Decision, body: dict) -> None:
    """Claude Code's cache-warming request costs quota and primes nothing on a provider
    without Anthropic's prompt cache; routes with `intercept: [warmup]` answer it here."""
    message = messages.text_message(decision.requested, "OK")
    if body.get("stream"):
        answer(flow, 200, messages.as_events(message), {"content-type": "text/event-stream"})
    else:
        answer_json(flow, 200, message)
    flow.marked = ":zap:"
    flow.comment = f"intercepted: warmup for {decision.requested} [{decision.route.source}], answered locally"


def _message_body(flow: http.HTTPFlow) -> dict:
    try:
        body = json.loads(flow.request.content or b"")
    except ValueError as e:
        raise GatewayError(400, f"request body is not valid JSON ({e})") from e
    if not isinstance(body, dict):
        raise GatewayError(400, "request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise GatewayError(400, "model: field required (a non-empty string naming the model)")
    return body


def _send(flow: http.HTTPFlow, provider: Provider, credential: Credential | None) -> None:
    """Point the request at `provider` with its auth; the client's own token stays only
    for passthrough, and modelmux's own x-modelmux-* headers never leave the gateway."""
    flow.request.url = provider.base_url + flow.request.path
    flow.metadata["modelmux"] = {
        "provider": provider.name,
        "connect_timeout": provider.connect_timeout,
        "response_timeout": provider.response_timeout,
    }
    headers = flow.request.headers
    for name in {n.lower() for n in headers if n.lower().startswith(OWN_HEADER_PREFIX)}:
        del headers[name]
    if provider.auth is None and _carries_placeholder(headers):
        raise GatewayError(
            401,
            f"provider '{provider.name}' uses the client's own Anthropic credentials (auth: passthrough), "
            "but this request carries modelmux's placeholder token; log in to Claude Code (or set "
            "ANTHROPIC_API_KEY), or use a profile whose providers have credentials of their own",
        )
    if provider.auth is not None:
        for name in CLIENT_AUTH_HEADERS:
            headers.pop(name, None)
        assert credential is not None
        headers[provider.auth.header] = provider.auth.value(credential)
    headers.update(provider.headers)


def _carries_placeholder(headers: http.Headers) -> bool:
    return PLACEHOLDER_TOKEN in client_tokens(headers).values()


def _is_event_stream(response: http.Response) -> bool:
    return response.headers.get("content-type", "").startswith("text/event-stream")

"""LocalAPI: /healthz, /v1/models, the credential pools' state, the usage counts and the
Prometheus metrics, answered by the gateway itself."""

from __future__ import annotations

import json
import os
import time

from mitmproxy import ctx
from mitmproxy import http

from modelmux import __version__
from modelmux import routing
from modelmux.addons import vault
from modelmux.addons.answers import answer, answer_error, answer_json, request_path
from modelmux.addons.credentials import Credentials
from modelmux.addons.inbound import InboundAuth, presented
from modelmux.addons.metrics import Metrics
from modelmux.addons.settings import Settings
from modelmux.addons.usage import Usage
from modelmux.credentials.snapshot import snapshot
from modelmux.errors import GatewayError

MODELS_PREFIX = "/v1/models/"
CREDENTIALS_PATH = "/modelmux/credentials"
RESET_PATH = "/modelmux/credentials/reset"
USAGE_PATH = "/modelmux/usage"
METRICS_PATH = "/metrics"
# What /healthz tells a request without the gateway key, when one is set: that modelmux
# answers here, which is what the launcher needs to recognise (procs.health) before it
# sends the key. The rest (pid, config path, provider and profile names, listeners, the
# reload error) describes the machine and its setup: only for those with the key.
PUBLIC_HEALTH = {"status": "ok", "service": "modelmux", "version": __version__}
# A base URL written with /v1 (`ANTHROPIC_BASE_URL=http://127.0.0.1:7878/v1`) doubles it:
# Anthropic clients append /v1/messages themselves.
DOUBLED_V1 = "/v1/v1"
DAILY = {"true": True, "false": False}  # /modelmux/usage?daily=


class LocalAPI:
    """Health for the launcher, and the model catalogue in Anthropic's list format."""

    def __init__(self, settings: Settings, credentials: Credentials, usage: Usage, metrics: Metrics,
                 inbound: InboundAuth) -> None:
        self.settings = settings
        self.inbound = inbound
        self.credentials = credentials
        self.usage = usage
        self.metrics = metrics
        self.started = time.time()

    def load(self, loader) -> None:
        loader.add_option(
            "modelmux_log",
            str,
            "",
            "The file this gateway's output goes to, shown by /healthz and `modelmux status`; "
            "`modelmux run` sets it when it starts a gateway in the background. Empty: the "
            "terminal it runs in.",
        )

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        path = request_path(flow)
        if path == DOUBLED_V1 or path.startswith(DOUBLED_V1 + "/"):
            # Always answered here, even with a passthrough default: no upstream serves it,
            # and Anthropic's own 404 would not say why.
            answer_error(flow, doubled_v1(flow, path))
            return
        if flow.request.method == "POST" and path == RESET_PATH:
            self.reset_credentials(flow)
            return
        if flow.request.method not in ("GET", "HEAD"):
            return
        if path == "/healthz":
            answer_json(flow, 200, self.health() if self.shows_everything(flow) else PUBLIC_HEALTH)
        elif path == "/":
            # Claude Code probes the base URL (HEAD /) before its first request.
            answer_json(flow, 200, {"service": "modelmux", "version": __version__})
        elif path == "/v1/models":
            self.list_models(flow)
        elif path == CREDENTIALS_PATH:
            assert self.credentials.pools
            document = snapshot(self.credentials.pools)
            if keys := self.inbound.describe(time.time()):  # only on a gateway with keys
                document["client_keys"] = keys
            answer_json(flow, 200, document)
        elif path == USAGE_PATH:
            self.usage_report(flow)
        elif path == METRICS_PATH:  # behind the gateway key (InboundAuth), as Prometheus can send it
            body, content_type = self.metrics.exposition(flow.request.headers.get("accept"))
            answer(flow, 200, body, {"content-type": content_type})
        elif path.startswith(MODELS_PREFIX):
            self.get_model(flow, path.removeprefix(MODELS_PREFIX))

    def shows_everything(self, flow: http.HTTPFlow) -> bool:
        """Whether /healthz shows its whole document: without gateway keys, to anyone;
        with them, to the keys that may use the gateway's own API."""
        assert self.settings.config
        keys = self.settings.config.server.client_keys
        if not keys:
            return True
        key = presented(vault.client_tokens(flow.request), keys)
        return key is not None and key.admin

    def health(self) -> dict:
        settings = self.settings
        assert settings.config
        return {
            **PUBLIC_HEALTH,
            "pid": os.getpid(),
            "uptime_s": round(time.time() - self.started, 1),
            "config": settings.config.summary(),
            "config_loaded_at": settings.loaded_at,
            "reload_error": settings.reload_error,
            "listeners": list(ctx.options.mode),
            "log": ctx.options.modelmux_log or None,
            # What the credential state and usage files held that could not be used, or
            # could not be written: each names its file and what was kept (file_problems.py).
            "file_problems": [p.document() for p in [*self.credentials.problems(), *self.usage.problems()]],
            # Where the pools' state lives; with Redis, whether it is shared now or this
            # gateway serves on its own state (degraded) since when (docs/team.md).
            "state": self.credentials.fleet.describe() if self.credentials.fleet else {"backend": "file"},
        }

    def list_models(self, flow: http.HTTPFlow) -> None:
        assert self.settings.config
        query = flow.request.query
        try:
            limit = int(query.get("limit", "20"))
            profile = self.settings.profile_of(flow)
        except ValueError:
            return answer_error(flow, GatewayError(400, "limit: must be a whole number from 1 to 1000"))
        except GatewayError as e:
            return answer_error(flow, e)
        if not 1 <= limit <= 1000:
            return answer_error(flow, GatewayError(400, "limit: must be a whole number from 1 to 1000"))
        page = routing.catalog(
            self.settings.config, profile, limit, query.get("after_id"), query.get("before_id")
        )
        answer_json(flow, 200, page)

    def get_model(self, flow: http.HTTPFlow, name: str) -> None:
        config = self.settings.config
        assert config
        try:
            profile = self.settings.profile_of(flow)
        except GatewayError as e:
            return answer_error(flow, e)
        if name not in routing.model_names(config, profile):
            return answer_error(flow, GatewayError(404, f"model '{name}' is not configured in {config.path.name}"))
        answer_json(flow, 200, routing.catalog_entry(config, name))

    def usage_report(self, flow: http.HTTPFlow) -> None:
        """?days=N (default 7: the last 7 local days; 1: today) &by=provider|model|credential|client_key|all
        &daily=true (each day's rows too)."""
        query = flow.request.query
        days, daily = query.get("days", "7"), query.get("daily", "false")
        try:
            if daily not in DAILY:
                raise ValueError("daily: true or false")
            document = self.usage.report(int(days) if days.isascii() and days.isdigit() else 0, query.get("by", "all"),
                                         DAILY[daily])
        except ValueError as e:
            return answer_error(flow, GatewayError(400, str(e)))
        answer_json(flow, 200, document)

    def reset_credentials(self, flow: http.HTTPFlow) -> None:
        """POST {"provider": NAME, "label": LABEL} clears one credential's cooldowns; without
        a label, every credential of the provider; `{}`: every credential."""
        try:
            body = json.loads(flow.request.content or b"{}")
        except (ValueError, RecursionError):  # RecursionError: JSON nested some 10,000 deep
            body = None
        if not (isinstance(body, dict) and all(isinstance(body.get(k, ""), str) for k in ("provider", "label"))):
            return answer_error(flow, GatewayError(
                400, 'send {"provider": NAME, "label": LABEL}, {"provider": NAME} or {} (every credential)'))
        try:
            self.credentials.reset(body.get("provider", ""), body.get("label", ""))
        except LookupError as e:
            return answer_error(flow, GatewayError(404, str(e.args[0])))
        assert self.credentials.pools
        answer_json(flow, 200, snapshot(self.credentials.pools))


def doubled_v1(flow: http.HTTPFlow, path: str) -> GatewayError:
    """The 404 for a base URL written with /v1, naming the one to write instead."""
    host, port = flow.client_conn.sockname[:2]
    base = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    meant = path.removeprefix("/v1")
    return GatewayError(
        404,
        f"modelmux serves {meant}, not {path}: remove /v1 from ANTHROPIC_BASE_URL "
        f"(set it to {base}; the client adds /v1 itself)",
    )

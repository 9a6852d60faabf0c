"""Failover: the relay's driver of a request's attempts, sending each with its Sender.

Which provider and credential come next, and the error when none is left, are
decided by the request's Attempts (modelmux/attempt/__init__.py, shared with mitmproxy's own
send path). An attempt counts as failed only while nothing has reached the client: a
connect error, a timeout, an error status, or a stream that ends or reports an error
before its first real event (the Pump holds it until then). From the first real
event on, the answer is the client's, and a break becomes an `event: error`.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx
from mitmproxy import http

from modelmux import attempt
from modelmux.attempt import exchange
from modelmux.translate import effort
from modelmux.addons.credentials import Credentials
from modelmux.addons.internals import flows_kept
from modelmux.addons.notes import notes_of
from modelmux.addons.pump import Pump, answer_record, passed_headers
from modelmux.addons.sender import Response, Sender, origin_of
from modelmux.attempt import Attempts, GiveUp, Pick, Send
from modelmux.config.types import Credential
from modelmux.credentials.cooldowns import TransportFailure
from modelmux.errors import GatewayError
from modelmux.headers import client_credential
from modelmux.translate.meter import tokens_of_json
from modelmux.oauth.refresher import Refresher
from modelmux.attempt.outcomes import Failure
from modelmux.credentials.pools import Lease
from modelmux.routing import Decision
from modelmux.secrets import label_of, scrub, shown_headers

logger = logging.getLogger(__name__)
# httpx logs every request's URL at INFO, query included, where a provider may keep a key;
# httpcore traces each request in about ten DEBUG records, which mitmproxy (its root
# logger at DEBUG) formats and hands to every addon: half the relay's cost per request.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)

ERROR_BODY_LIMIT = 64 * 1024
REASON_LIMIT = 500  # characters of a failed attempt's reason kept in its trail
# Silence after which a started answer counts as dead: Claude Code's own request
# timeout, so modelmux never gives up on an upstream before the client would.
STALL_TIMEOUT = 600.0


@dataclass
class Plan:
    """Everything the relay needs to send a request anywhere, taken from the flow when
    the Router routed it."""

    flow: http.HTTPFlow
    candidates: list[Decision]
    body: dict[str, Any]
    raw: bytes
    path: str
    query: str
    client: list[tuple[str, str]]  # the client's headers as sent
    lookup: dict[str, str]  # the same by lowercase name
    session: str | None
    max_attempts: int
    model_at: tuple[int, int] | None = None  # where `raw` has the model's value (validation.parse_placed)
    clients: list[Credential] = field(default_factory=list)  # the client's tokens (vault.client_credentials)

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))

    def secrets(self, candidate: Decision) -> list[Credential]:
        """What an attempt at `candidate` may be answered with and never shows: its
        provider's secrets (first: a client may send one of them too), the client's tokens."""
        return [*candidate.provider.secrets, *self.clients]


class Failover:
    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials
        self.sender: Sender | None = None
        self.client: httpx.AsyncClient | None = None  # the Refresher's, for token endpoints
        self.refresher: Refresher | None = None

    async def start(self, tls: ssl.SSLContext | None = None) -> None:
        """`tls`: what upstreams' certificates are checked against (sender.tls_context)."""
        self.sender = Sender(tls)
        # trust_env off: mitmproxy itself ignores HTTP(S)_PROXY, and both paths must reach
        # the same upstreams. The Sender's TLS context: its CAs are loaded once (~25 ms).
        self.client = httpx.AsyncClient(verify=self.sender.tls, trust_env=False, follow_redirects=False)
        self.refresher = Refresher(self.client, fleet=self.credentials)

    async def stop(self) -> None:
        if self.sender:
            self.sender.close()
        if self.client:
            await self.client.aclose()

    async def run(self, plan: Plan, out) -> None:  # out: relay.Responder
        """Drives the request's Attempts (modelmux/attempt/__init__.py): leases what it picks,
        sends what it sends, waits its pauses, and answers its error when nothing is left."""
        started = time.monotonic()
        notes = notes_of(plan.flow)
        notes["attempts"] = []
        attempts = Attempts(plan.candidates, plan.max_attempts, self.credentials.admits, time.time)
        try:
            step = attempts.start()
            while step is not None and not isinstance(step, GiveUp):
                if isinstance(step, Pick):
                    candidate = step.candidate
                    step = attempts.picked(await self.credentials.lease(
                        candidate.provider.name, candidate.upstream_model, plan.session, step.tried))
                elif isinstance(step, Send):
                    step = attempts.sent(await self._attempt(plan, step.candidate, step.lease, out, notes))
                else:
                    await asyncio.sleep(step.seconds)
                    notes["rounds"] = 2
                    step = attempts.paused()
            if isinstance(step, GiveUp):
                notes["error"] = step.message
                out.whole(step.status, [("content-type", "application/json"), *step.headers.items()], step.body)
        except asyncio.CancelledError:
            notes["cancelled"] = True
            raise
        except Exception:
            logger.exception("failover for %s failed", plan.path)  # without its query, which may hold a key
            if not out.started:
                out.error(GatewayError(500, "modelmux failed while trying upstreams (internal error; see the gateway log)"))
        finally:
            notes["relay_ms"] = round((time.monotonic() - started) * 1000, 1)
            _annotate(notes)

    async def _attempt(self, plan: Plan, candidate: Decision, lease: Lease | None, out, notes: dict) -> Failure | None:
        provider = candidate.provider
        trail: dict[str, Any] = {"provider": provider.name,
                                 "credential": label_of(provider, lease.credential if lease else None),
                                 "model": effort.shown(candidate.upstream_model, candidate.effort),
                                 "protocol": provider.protocol, "start": time.time()}
        notes["attempts"].append(trail)
        began = time.monotonic()
        try:
            failure = await self._send(plan, candidate, lease, out, trail)
            if failure is not None:
                failure = self._judged(failure, lease, trail)
            return failure
        except asyncio.CancelledError:
            if lease is not None and not lease.recorded:
                self.credentials.record(lease, "cancelled")
            trail["outcome"] = "cancelled"
            raise
        finally:
            trail["ms"] = round((time.monotonic() - began) * 1000, 1)
            if lease is not None and not lease.recorded:
                lease.release()

    def _judged(self, failure: Failure, lease: Lease | None, trail: dict) -> Failure:
        """A failed attempt, recorded in its credential's pool and its trail, and logged
        (upstreams quote a rejected key in their error messages: scrubbed)."""
        trail["outcome"] = failure.outcome if failure.outcome is not None else f"not sent: {failure.message}"
        # Why, for the dashboard ("connect" alone does not say at which address, or what failed).
        trail["error"] = scrub(failure.message[:REASON_LIMIT], failure.candidate.provider.secrets)
        if lease is not None and failure.outcome is not None:
            failure = self.credentials.judge(lease, failure)
        if failure.outcome is not None:
            logger.info("attempt %s for %s failed: %s", failure.describe(), failure.candidate.requested,
                        scrub((failure.said or failure.message)[:200], failure.candidate.provider.secrets))
        return failure

    async def _send(self, plan: Plan, candidate: Decision, lease: Lease | None, out, trail: dict,
                    refreshed: bool = False) -> Failure | None:
        provider = candidate.provider
        credential = lease.credential if lease else None
        if credential is not None and credential.oauth is not None:
            assert self.refresher
            if (why := await self.refresher.fresh(credential)) is not None:
                return attempt.failed(candidate, trail["credential"], 401,
                                      f"credential '{credential.label}' needs a new login: {why}")
            sent_with = credential.oauth.token
        try:
            outgoing = exchange.prepare(candidate, plan.body, plan.raw, plan.path, plan.query, plan.lookup,
                                        lease.credential if lease else None, plan.model_at)
        except GatewayError as e:
            return attempt.not_sent(candidate, trail["credential"], e)
        outgoing.set["accept-encoding"] = "identity"  # streams are read here, so no gzip
        trail["upstream"] = outgoing.url.partition("?")[0]
        if outgoing.translation is not None and plan.stream:
            asyncio.get_running_loop().call_soon(exchange.estimate, outgoing.translation, plan.body)
        assert self.sender
        headers = outgoing.headers(plan.client)
        if flows_kept():  # for the record: the Dashboard shows the last attempt's as the flow's request
            auth = exchange.auth_header(provider, credential)
            trail["sent"] = {"url": scrub(outgoing.url, provider.written_secrets), "body": outgoing.content,
                             "headers": shown_headers(headers, auth, credential, provider.written_secrets)}
        where = attempt.upstream_at(provider.name, origin_of(outgoing.url))
        response = None
        try:
            # response_timeout bounds the wait for the answer to begin, as on flows
            # mitmproxy sends; a stream may then think silently for long (pings cover it).
            response = await asyncio.wait_for(
                self.sender.post(outgoing.url, headers, outgoing.content, provider.connect_timeout, STALL_TIMEOUT),
                provider.response_timeout)
            trail["status"] = response.status_code
            if lease is None and (login := self.credentials.heard(provider, response.headers, lambda: plan.lookup)):
                notes_of(plan.flow)["login"] = login  # the client's own, on passthrough: its quota is kept
            if response.status_code == 401 and credential is not None and credential.oauth is not None and not refreshed:
                # An oauth token the upstream no longer takes: refreshed once, then the
                # request is sent again with the new one.
                assert self.refresher
                response.close()
                if await self.refresher.refresh(credential, sent_with):
                    trail["refreshed"] = True
                    return await self._send(plan, candidate, lease, out, trail, refreshed=True)
                if credential.oauth.needs_login:
                    return attempt.failed(candidate, trail["credential"], 401,
                                          f"credential '{credential.label}': {credential.oauth.needs_login}")
                # The token endpoint could not be reached: a passing failure, not a lost login.
                return attempt.failed(candidate, trail["credential"], 503, f"credential '{credential.label}' got a "
                                      "401 and its token could not be refreshed (the token endpoint did not answer)")
            if response.status_code >= 400:
                return await self._error_status(candidate, trail, response, plan)
            if response.headers.get("content-type", "").startswith("text/event-stream"):
                secrets = plan.secrets(candidate)
                return await Pump(candidate, lease, outgoing, response, out, trail, secrets,
                                  notes_of(plan.flow), self.credentials,
                                  partial(self.answer_whole, lease, response, out, trail, secrets=secrets)).run()
            return await self._whole(candidate, lease, outgoing, response, out, trail, plan.secrets(candidate))
        except TimeoutError:
            return attempt.failed(candidate, trail["credential"], "timeout",
                                  attempt.not_answered(where, provider.response_timeout))
        except httpx.LocalProtocolError as e:  # a client's header that HTTP does not allow: not sent, its 400
            return attempt.not_sent(candidate, trail["credential"], GatewayError(400, str(e)))
        except httpx.TransportError as e:
            return attempt.failed(candidate, trail["credential"], *_transport(e, where, provider.connect_timeout))
        finally:
            if response is not None:
                response.close()

    async def _error_status(self, candidate: Decision, trail: dict, response: Response, plan: Plan) -> Failure:
        """The client's own tokens are scrubbed from what the upstream says, and which kind
        it sent explains a passthrough 401."""
        raw = b""
        async for chunk in response.aiter_raw():
            raw += chunk
            if len(raw) >= ERROR_BODY_LIMIT:
                break
        body = response.decoded(raw)[:ERROR_BODY_LIMIT]
        secrets = plan.secrets(candidate)
        text = scrub(body.decode("utf-8", "replace"), secrets)
        if "sent" in trail:
            kept = answer_record(response, body, secrets)
            trail["response_headers"], trail["response_body"] = kept["headers"], kept["body"]
        return attempt.refused(candidate, trail["credential"], response.status_code, response.reason_phrase, text,
                               response.headers, client_credential(plan.lookup), time.time())

    async def _whole(self, candidate: Decision, lease: Lease | None, outgoing: exchange.Outgoing,
                     response: Response, out, trail: dict, secrets: list[Credential]) -> Failure | None:
        raw = await response.aread()
        provider = candidate.provider
        answer = attempt.whole(provider.name, provider.secrets, outgoing.translation, outgoing.restore,
                               response.status_code, raw)
        if isinstance(answer, GatewayError):
            return attempt.failed(candidate, trail["credential"], answer.status, answer.message, answer)
        self.answer_whole(lease, response, out, trail, *answer, raw, secrets)
        return None

    def answer_whole(self, lease: Lease | None, response: Response, out, trail: dict, body: bytes,
                     content_type: str, raw: bytes, secrets: list[Credential]) -> None:
        """The client gets a whole answer, `body`, made from the upstream's `raw` one (kept
        without `secrets`); the attempt and the credential's pool are told it succeeded."""
        out.whole(response.status_code, [*passed_headers(response.headers), ("content-type", content_type)], body)
        trail["outcome"] = response.status_code
        if "sent" in trail:
            trail["answer"] = answer_record(response, raw, secrets)
        if lease is not None:
            tokens = tokens_of_json(body)
            self.credentials.record(lease, response.status_code, usage=tokens.for_pool() if tokens else None,
                                    headers=response.headers)


def _transport(error: httpx.TransportError, where: str, connect: float) -> tuple[TransportFailure, str]:
    if isinstance(error, httpx.ConnectTimeout):
        return "timeout", attempt.not_connected(where, connect)
    if isinstance(error, httpx.TimeoutException):
        return "timeout", attempt.went_silent(where, STALL_TIMEOUT)
    detail = str(error) or type(error).__name__
    if isinstance(error, httpx.ConnectError):
        if isinstance(error.__cause__, ssl.SSLError):
            return "connect", attempt.tls_failed(where, detail)
        return "connect", attempt.cannot_connect(where, detail)
    return "reset", attempt.closed(where, detail)


def _annotate(notes: dict) -> None:
    """The flow's notes name the last attempt's provider, credential and model: the
    Dashboard's summary and the Redactor read them."""
    attempts = notes.get("attempts") or []
    if attempts:
        last = attempts[-1]
        notes["provider"], notes["credential"], notes["model"] = last["provider"], last["credential"], last["model"]

"""Failover: the attempts of one request, run by the relay until one answers.

Order: the route's provider with each of its credentials in turn (as the pool
hands them out, skipping those already tried), then each fallback provider the same
way, at most `server.max_attempts` attempts. An attempt counts as failed only while
nothing has reached the client: a connect error, a timeout, an error status, or a
stream that ends or reports an error before its first real event. From the first
real event on, the answer is the client's, and a break becomes an `event: error`.
A request the upstream rejects as faulty (400, 404, 413, ...) is not tried again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx
from mitmproxy import http

from modelmux import exchange
from modelmux.addons.credentials import Credentials
from modelmux.addons.internals import flows_kept
from modelmux.addons.pump import Pump, answer_record, passed_headers
from modelmux.config.types import Credential
from modelmux.credentials.cooldowns import RETRY_HEADERS, Outcome, classify, names_a_wait, retry_after
from modelmux.credentials.pools import Lease
from modelmux.credentials.refusals import Refusal
from modelmux.errors import GatewayError, upstream_error
from modelmux.headers import client_credential
from modelmux.oauth.refresher import Refresher
from modelmux.outcomes import Failure, Outcomes, message_of, summary
from modelmux.routing import Decision
from modelmux.secrets import client_credentials, label_of, scrub, shown_headers
from modelmux.translate import effort
from modelmux.translate.meter import tokens_of_json

logger = logging.getLogger(__name__)
# httpx logs every request's URL at INFO, query included, where a provider may keep a key;
# httpcore traces each request in about ten DEBUG records, which mitmproxy (its root
# logger at DEBUG) formats and hands to every addon: half the relay's cost per request.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)

ERROR_BODY_LIMIT = 64 * 1024
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

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))

    def secrets(self, candidate: Decision) -> list[Credential]:
        """What an attempt at `candidate` may be answered with and never shows: its
        provider's secrets (first: a client may send one of them too), the client's tokens."""
        return [*candidate.provider.secrets, *client_credentials(self.lookup)]


class Failover:
    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials
        self.client: httpx.AsyncClient | None = None
        self.refresher: Refresher | None = None

    async def start(self) -> None:
        # trust_env off: mitmproxy itself ignores HTTP(S)_PROXY, and both paths must reach
        # the same upstreams.
        self.client = httpx.AsyncClient(trust_env=False, limits=httpx.Limits(max_connections=None,
                                        max_keepalive_connections=64), follow_redirects=False)
        self.refresher = Refresher(self.client)

    async def stop(self) -> None:
        if self.client:
            await self.client.aclose()

    async def run(self, plan: Plan, out) -> None:  # out: relay.Responder
        started = time.monotonic()
        notes = plan.flow.metadata["modelmux"]
        notes["attempts"] = []
        try:
            outcomes = await self._attempts(plan, out, notes)
            if outcomes is not None:
                self._give_up(plan, outcomes, out, notes)
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

    async def _attempts(self, plan: Plan, out, notes: dict) -> Outcomes | None:
        """Runs attempts until one answers (returns None) or nothing is left: a round over
        the route's providers, and a second one after upstream errors (Outcomes.again)."""
        outcomes = Outcomes()
        candidates = self._ordered(plan.candidates)
        if await self._round(plan, candidates, out, notes, outcomes, first=True):
            return None
        again = outcomes.again(candidates, plan.max_attempts, self.credentials.admits, time.time())
        if again is None:
            return outcomes
        chosen, pause = again
        await asyncio.sleep(pause * random.uniform(1.0, 1.25))  # jitter: requests that failed together spread out
        notes["rounds"] = 2
        return None if await self._round(plan, chosen, out, notes, outcomes, first=False) else outcomes

    async def _round(self, plan: Plan, candidates: list[Decision], out, notes: dict, outcomes: Outcomes,
                     first: bool) -> bool:
        """Each candidate in turn, each of its credentials as the pool hands them out;
        True once one answered."""
        for candidate in candidates:
            provider = candidate.provider
            tried: set[str] = set()
            while len(outcomes.failures) < plan.max_attempts:
                lease = None
                if provider.credentials:
                    picked = await self.credentials.lease(
                        provider.name, candidate.upstream_model, plan.session, frozenset(tried)
                    )
                    if isinstance(picked, Refusal):
                        # A refusal after this request tried some: only its recovery adds.
                        (outcomes.refusals if first and not tried else outcomes.exhausted).append(picked)
                        break
                    lease = picked
                failure = await self._attempt(plan, candidate, lease, out, notes)
                if failure is None:
                    return True
                outcomes.failures.append(failure)
                if failure.final:
                    return False
                if lease is None or not failure.try_same_provider or not self.credentials.admits(provider.name):
                    break  # an open breaker: the host fails, and another key would wait for it too
                tried.add(lease.credential.label)
        return False

    def _ordered(self, candidates: list[Decision]) -> list[Decision]:
        """The route's providers in order, those whose breaker is open last: they are
        still tried when the others fail (an open breaker never refuses by itself)."""
        return sorted(candidates, key=lambda c: not self.credentials.admits(c.provider.name))

    async def _attempt(self, plan: Plan, candidate: Decision, lease: Lease | None, out, notes: dict) -> Failure | None:
        provider = candidate.provider
        trail: dict[str, Any] = {"provider": provider.name,
                                 "credential": label_of(provider, lease.credential if lease else None),
                                 "model": effort.shown(candidate.upstream_model, candidate.effort),
                                 "protocol": provider.protocol}
        notes["attempts"].append(trail)
        began = time.monotonic()
        try:
            return await self._send(plan, candidate, lease, out, trail)
        except asyncio.CancelledError:
            if lease is not None and not lease.recorded:
                self.credentials.record(lease, "cancelled")
            trail["outcome"] = "cancelled"
            raise
        finally:
            trail["ms"] = round((time.monotonic() - began) * 1000, 1)
            if lease is not None and not lease.recorded:
                lease.release()

    async def _send(self, plan: Plan, candidate: Decision, lease: Lease | None, out, trail: dict,
                    refreshed: bool = False) -> Failure | None:
        provider = candidate.provider
        credential = lease.credential if lease else None
        if credential is not None and credential.oauth is not None:
            assert self.refresher
            if (why := await self.refresher.fresh(credential)) is not None:
                return self._failed(candidate, lease, trail, 401, f"credential '{credential.label}' needs a new login: {why}")
            sent_with = credential.oauth.token
        try:
            outgoing = exchange.prepare(candidate, plan.body, plan.raw, plan.path, plan.query, plan.lookup,
                                        lease.credential if lease else None)
        except GatewayError as e:
            trail["outcome"] = f"not sent: {e.message}"
            return Failure(candidate, trail["credential"], None, "request", e.message, e.status, e.body())
        outgoing.set["accept-encoding"] = "identity"  # streams are read here, so no gzip
        trail["upstream"] = outgoing.url.partition("?")[0]
        if outgoing.translation is not None and plan.stream:
            asyncio.get_running_loop().call_soon(exchange.estimate, outgoing.translation, plan.body)
        assert self.client
        headers = outgoing.headers(plan.client)
        request = self.client.build_request(
            "POST", outgoing.url, headers=headers, content=outgoing.content,
            timeout=httpx.Timeout(STALL_TIMEOUT, connect=provider.connect_timeout),
        )
        if flows_kept():  # for the record: the Dashboard shows the last attempt's as the flow's request
            auth = exchange.auth_header(provider, credential)
            trail["sent"] = {"url": scrub(outgoing.url, provider.written_secrets), "body": outgoing.content,
                             "headers": shown_headers(headers, auth, credential, provider.written_secrets)}
        where = f"provider '{provider.name}' ({trail['upstream']})"
        response = None
        try:
            # response_timeout bounds the wait for the answer to begin, as on flows
            # mitmproxy sends; a stream may then think silently for long (pings cover it).
            response = await asyncio.wait_for(self.client.send(request, stream=True), provider.response_timeout)
            trail["status"] = response.status_code
            if response.status_code == 401 and credential is not None and credential.oauth is not None and not refreshed:
                # An oauth token the upstream no longer takes: refreshed once, then the
                # request is sent again with the new one.
                assert self.refresher
                await response.aclose()
                if await self.refresher.refresh(credential, sent_with):
                    trail["refreshed"] = True
                    return await self._send(plan, candidate, lease, out, trail, refreshed=True)
                if credential.oauth.needs_login:
                    return self._failed(candidate, lease, trail, 401,
                                        f"credential '{credential.label}': {credential.oauth.needs_login}")
                # The token endpoint could not be reached: a passing failure, not a lost login.
                return self._failed(candidate, lease, trail, 503, f"credential '{credential.label}' got a 401 "
                                    "and its token could not be refreshed (the token endpoint did not answer)")
            if response.status_code >= 400:
                return await self._error_status(candidate, lease, trail, response, plan)
            if response.headers.get("content-type", "").startswith("text/event-stream"):
                secrets = plan.secrets(candidate)
                return await Pump(candidate, lease, outgoing, response, out, trail, secrets,
                                  plan.flow.metadata["modelmux"], self.credentials,
                                  partial(self._failed, candidate, lease, trail),
                                  partial(self.answer_whole, lease, response, out, trail, secrets=secrets)).run()
            return await self._whole(candidate, lease, outgoing, response, out, trail, plan.secrets(candidate))
        except TimeoutError:
            message = f"did not answer within {provider.response_timeout:g} s (response_timeout)"
            return self._failed(candidate, lease, trail, "timeout", f"{where} {message}")
        except httpx.TransportError as e:
            failure, message = _transport(e, provider.connect_timeout)
            return self._failed(candidate, lease, trail, failure, f"{where} {message}")
        finally:
            if response is not None:
                await response.aclose()

    async def _error_status(self, candidate: Decision, lease: Lease | None, trail: dict, response: httpx.Response,
                            plan: Plan) -> Failure:
        """The client's own tokens are scrubbed from what the upstream says, and which kind
        it sent explains a passthrough 401."""
        body = b""
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) >= ERROR_BODY_LIMIT:
                break
        secrets = plan.secrets(candidate)
        text = scrub(body.decode("utf-8", "replace"), secrets)
        if "sent" in trail:
            kept = answer_record(response, body, secrets)
            trail["response_headers"], trail["response_body"] = kept["headers"], kept["body"]
        status, client_body, added = exchange.upstream_failure(candidate.provider, response.status_code,
                                                               response.reason_phrase, text, candidate.route.source,
                                                               client_credential(plan.lookup))
        headers = {**response.headers, **added}
        return self._failed(candidate, lease, trail, status, text, headers, response.reason_phrase, client_body)

    async def _whole(self, candidate: Decision, lease: Lease | None, outgoing: exchange.Outgoing,
                     response: httpx.Response, out, trail: dict, secrets: list[Credential]) -> Failure | None:
        raw = await response.aread()
        try:
            body, content_type = exchange.whole_answer(outgoing.translation, outgoing.restore, raw)
        except ValueError:
            message = (f"provider '{candidate.provider.name}' answered HTTP {response.status_code} "
                       "with a body that is not JSON")
            return self._failed(candidate, lease, trail, 502, message)
        except GatewayError as e:  # an answer that says the upstream failed after all
            error = exchange.failed_answer(candidate.provider.name, e, candidate.provider.secrets)
            return self._failed(candidate, lease, trail, error.status, error.message, error.headers, body=error.body())
        self.answer_whole(lease, response, out, trail, body, content_type, raw, secrets)
        return None

    def answer_whole(self, lease: Lease | None, response: httpx.Response, out, trail: dict, body: bytes,
                     content_type: str, raw: bytes, secrets: list[Credential]) -> None:
        """The client gets a whole answer, `body`, made from the upstream's `raw` one (kept
        without `secrets`); the attempt and the credential's pool are told it succeeded."""
        out.whole(response.status_code, [*passed_headers(response.headers), ("content-type", content_type)], body)
        trail["outcome"] = response.status_code
        if "sent" in trail:
            trail["answer"] = answer_record(response, raw, secrets)
        if lease is not None:
            tokens = tokens_of_json(body)
            self.credentials.record(lease, response.status_code, usage=tokens.for_pool() if tokens else None)

    def _failed(self, candidate: Decision, lease: Lease | None, trail: dict, outcome: Outcome, text: str,
                headers: Mapping[str, str] | None = None, reason: str | None = None,
                body: bytes | None = None) -> Failure:
        """Record a failed attempt. `reason` (the HTTP reason phrase) says `text` is the
        upstream's own error, which the client gets as it came, wrapped and scrubbed (or
        as `body`, when that is already done); otherwise `text` is modelmux's message."""
        trail["outcome"] = outcome
        verdict = None
        if lease is not None:
            verdict = self.credentials.record(lease, outcome, headers=headers, body=text)
        kind = verdict.kind if verdict is not None else classify(outcome, text)
        label = trail["credential"]
        if reason is not None:
            assert isinstance(outcome, int)
            provider = candidate.provider
            body = body or upstream_error(provider.name, outcome, reason, text, provider.secrets)
            waits = {k: v for k, v in (headers or {}).items() if k.lower() in RETRY_HEADERS}
            failure = Failure(candidate, label, outcome, kind, message_of(body), outcome, body, waits, verdict)
        else:
            status = (504 if outcome == "timeout" else 502) if isinstance(outcome, str) else outcome
            body = body or GatewayError(status, text).body()
            waits = {k: v for k, v in (headers or {}).items() if k.lower() in RETRY_HEADERS}
            failure = Failure(candidate, label, outcome, kind, text, status, body, waits, verdict)
        # Upstreams quote a rejected key in their error messages.
        logger.info("attempt %s for %s failed: %s", failure.describe(), candidate.requested,
                    scrub(text[:200], candidate.provider.secrets))
        return failure

    def _give_up(self, plan: Plan, outcomes: Outcomes, out, notes: dict) -> None:
        """The client's error once nothing is left to try: what the upstream said when one
        attempt was all there was (or the request was at fault), else a summary."""
        failures, refusals = outcomes.failures, outcomes.refusals
        last = failures[-1] if failures else None
        if last is not None and (last.final or outcomes.single_upstream()):
            notes["error"] = last.message
            headers = dict(last.headers)
            first = outcomes.earliest_recovery()
            if not last.final and first is not None and not names_a_wait(headers):
                headers["retry-after"] = str(retry_after(first, time.time()))  # the upstream named no wait; the pool knows one
            out.whole(last.status, [("content-type", "application/json"), *headers.items()], last.body)
            return
        if not failures and len(refusals) == 1:
            error = refusals[0].error()
        else:
            error = summary(plan.candidates[0].requested, outcomes, time.time())
        notes["error"] = error.message
        out.error(error)


def _transport(error: httpx.TransportError, connect: float) -> tuple[Outcome, str]:
    if isinstance(error, httpx.ConnectTimeout):
        return "timeout", f"could not be connected to within {connect:g} s (connect_timeout)"
    if isinstance(error, httpx.TimeoutException):
        return "timeout", f"went silent for {STALL_TIMEOUT:g} s"
    detail = str(error) or type(error).__name__
    if isinstance(error, httpx.ConnectError):
        return "connect", f"cannot be connected to: {detail}"
    return "reset", f"closed the connection without a complete answer: {detail}"


def _annotate(notes: dict) -> None:
    """The flow's notes name the last attempt's provider, credential and model: the
    Dashboard's summary and the Redactor read them."""
    attempts = notes.get("attempts") or []
    if attempts:
        last = attempts[-1]
        notes["provider"], notes["credential"], notes["model"] = last["provider"], last["credential"], last["model"]

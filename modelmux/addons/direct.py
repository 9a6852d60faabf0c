"""Direct: mitmproxy's own send path, for a stream with one possible upstream (one
provider, at most one of its credentials), `count_tokens`, and the paths passed through
unrouted (a JSON answer's request is the relay's, modelmux/addons/relay.py). It is the driver of the request's
Attempts (modelmux/attempt/__init__.py) there, as Failover is on the relay: the Router asks
it for the attempt's credential and points the flow; mitmproxy sends it; this addon
turns what came back into the client's answer (translated, its model restored, or
an upstream's error in Anthropic's words with the wait it or the pool named) and
tells the credential's pool what became of it.

Errors mitmproxy itself meets (no connection, a timeout) become pages in Failures;
their outcome reaches the pool here, in the `error` hook, which runs after Failures'.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from mitmproxy import http

from modelmux import attempt
from modelmux.attempt import exchange
from modelmux.addons.answers import JSON, mark_failed
from modelmux.addons import vault
from modelmux.addons.credentials import Credentials
from modelmux.addons.dashboard import Dashboard
from modelmux.addons.internals import CLIENT_GONE
from modelmux.addons.notes import notes_of
from modelmux.addons.streams import Pipe
from modelmux.attempt import Attempts, GiveUp, Pick, Send
from modelmux.config.types import Credential
from modelmux.credentials.cooldowns import Outcome
from modelmux.errors import GatewayError
from modelmux.attempt.outcomes import Failure
from modelmux.translate.passthrough import ModelRestorer
from modelmux.credentials.pools import Lease, Usage
from modelmux.routing import Decision
from modelmux.secrets import label_of, scrub

logger = logging.getLogger(__name__)

ERROR_BODY_LIMIT = 64 * 1024  # of an upstream's error body, read for its words and retry hints


class Refused(Exception):
    """No attempt could be made (the pool refused): the client's answer is `step`."""

    def __init__(self, step: GiveUp) -> None:
        super().__init__(step.message)
        self.step = step


@dataclass
class Sent:
    """A flow mitmproxy sends: its attempts, and the one it is."""

    attempts: Attempts
    candidate: Decision
    lease: Lease | None
    client_credential: str | None  # which kind of the client's own credentials went upstream
    # The client's own tokens, kept out of what the upstream says (not in the flow's
    # metadata, which a saved flow keeps).
    clients: list[Credential] = field(default_factory=list)

    @property
    def label(self) -> str:
        return label_of(self.candidate.provider, self.lease.credential if self.lease else None)

    @property
    def secrets(self) -> list[Credential]:
        return [*self.candidate.provider.secrets, *self.clients]


class Direct:
    def __init__(self, credentials: Credentials, dashboard: Dashboard) -> None:
        self.credentials = credentials
        self.dashboard = dashboard  # its meter counts a stream's tokens
        self._sent: dict[str, Sent] = {}  # flow id → its attempt, until answered

    async def begin(self, flow: http.HTTPFlow, candidate: Decision, session: str | None,
                    client_credential: str | None, clients: list[Credential]) -> Lease | None:
        """The flow's one attempt, with its credential leased (None: the provider has no
        pool). Raises Refused when the pool can give none."""
        attempts = Attempts([candidate], 1, self.credentials.admits, time.time)
        step = attempts.start()
        if isinstance(step, Pick):
            step = attempts.picked(await self.credentials.lease(
                candidate.provider.name, candidate.upstream_model, session, step.tried))
        if isinstance(step, GiveUp):
            raise Refused(step)
        assert isinstance(step, Send)
        self._sent[flow.id] = Sent(attempts, candidate, step.lease, client_credential, clients)
        return step.lease

    def abandon(self, flow: http.HTTPFlow) -> None:
        """`flow` is answered without asking the upstream after all."""
        sent = self._sent.pop(flow.id, None)
        if sent is not None and sent.lease is not None:
            sent.lease.release()

    # -- what came back -------------------------------------------------------------

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        """A stream is translated, or its model restored, as it comes; errors are read
        whole (`response`). What an answer to the client's own login says of its quota is
        kept from its head, error or not."""
        sent = self._sent.get(flow.id)
        response = flow.response
        if sent is None or response is None:
            return
        if sent.lease is None and (login := self.credentials.heard(
                sent.candidate.provider, response.headers, lambda: vault.client_tokens(flow.request))):
            notes_of(flow)["login"] = login
        if response.status_code >= 400:
            return
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            return
        notes = notes_of(flow)
        translation, restore = notes.get("translation"), notes.get("restore_model")
        if translation is None and not restore:
            response.stream = True
            return
        # A translated or rewritten stream differs in length from the upstream's.
        response.headers.pop("content-length", None)
        response.headers["transfer-encoding"] = "chunked"
        if translation is not None:
            transform = exchange.stream_transform(translation, None, sent.candidate.provider.secrets)
            assert transform is not None
            response.stream = Pipe(transform)
        else:
            response.stream = Pipe(ModelRestorer(restore))

    def response(self, flow: http.HTTPFlow) -> None:
        sent = self._sent.pop(flow.id, None)
        response = flow.response
        if sent is None or response is None:
            return
        notes = notes_of(flow)
        if notes.get("local"):  # answered here after all (Guard): the upstream never saw it
            if sent.lease is not None:
                sent.lease.release()
            return
        if response.status_code >= 400:
            self._failed(flow, sent, self._refused(flow, sent))
        elif response.stream:
            meter = self.dashboard.meter_of(flow)
            if meter is not None and meter.error_type is not None:
                # It ended in an error event after its content, as the relay's Pump counts one:
                # the client has the answer, error included, and its credential a reset.
                self._answered(flow, sent, None, outcome="reset")
                return
            tokens = meter.tokens() if meter else None
            self._answered(flow, sent, tokens.for_pool() if tokens else None)
        else:
            self._whole(flow, sent)

    def error(self, flow: http.HTTPFlow) -> None:
        """mitmproxy met an error: Failures described it (its page and `failure`)."""
        sent = self._sent.pop(flow.id, None)
        if sent is None:
            return
        notes = notes_of(flow)
        msg = flow.error.msg if flow.error else ""
        outcome: Outcome = "cancelled" if msg == CLIENT_GONE else notes.get("failure", "reset")
        if sent.lease is not None:
            self.credentials.record(sent.lease, outcome)
            _attempted(flow, sent.lease, outcome)

    def _whole(self, flow: http.HTTPFlow, sent: Sent) -> None:
        response = flow.response
        assert response
        notes = notes_of(flow)
        translation, restore = notes.get("translation"), notes.get("restore_model")
        if translation is None and not restore:
            self._answered(flow, sent, self._usage(flow))
            return
        provider = sent.candidate.provider
        answer = attempt.whole(provider.name, provider.secrets, translation, restore, response.status_code,
                               response.content or b"")
        if isinstance(answer, GatewayError):  # the upstream failed after all, or said nothing readable
            self._failed(flow, sent, attempt.failed(sent.candidate, sent.label, answer.status, answer.message, answer))
            mark_failed(flow, answer)
            return
        body, content_type = answer
        if body != response.content:
            response.content = body
        if translation is not None:
            response.headers.update({**JSON, "content-type": content_type})
        self._answered(flow, sent, self._usage(flow))

    def _refused(self, flow: http.HTTPFlow, sent: Sent) -> Failure:
        """The upstream's error answer, its keys and the client's tokens scrubbed."""
        response = flow.response
        assert response
        text = scrub((response.get_text(strict=False) or "")[:ERROR_BODY_LIMIT], sent.secrets)
        return attempt.refused(sent.candidate, sent.label, response.status_code, response.reason, text,
                               response.headers, sent.client_credential, time.time())

    def _failed(self, flow: http.HTTPFlow, sent: Sent, failure: Failure) -> None:
        """The attempt failed: its pool is told, and the client gets what the Attempts
        give up with (the upstream's own error when it is one already, with a wait)."""
        response = flow.response
        assert response and failure.outcome is not None
        if sent.lease is not None:
            failure = self.credentials.judge(sent.lease, failure)
        step = sent.attempts.sent(failure)
        assert isinstance(step, GiveUp)
        if step.status != response.status_code or step.body != response.content:
            response.status_code = step.status
            response.content = step.body
            response.headers["content-type"] = "application/json"
        response.headers.update(step.headers)
        if sent.lease is not None:
            _attempted(flow, sent.lease, failure.outcome)

    def _usage(self, flow: http.HTTPFlow) -> Usage | None:
        """A whole answer's tokens, as the pool counts them; the Dashboard's summary uses the same read."""
        tokens = self.dashboard.tokens_of(flow)
        return tokens.for_pool() if tokens else None

    def _answered(self, flow: http.HTTPFlow, sent: Sent, usage: Usage | None, outcome: Outcome | None = None) -> None:
        """The client has the answer; its credential's pool counts it as `outcome` (by
        default the answer's status)."""
        sent.attempts.sent(None)
        if sent.lease is not None:
            # The answer's headers, for its quota (quota.py); not for a "reset", which would
            # read them for a wait.
            headers = flow.response.headers if flow.response and outcome is None else None
            if outcome is None:
                outcome = flow.response.status_code if flow.response else 200
            self.credentials.record(sent.lease, outcome, usage=usage, headers=headers)
            _attempted(flow, sent.lease, outcome)


def _attempted(flow: http.HTTPFlow, lease: Lease, outcome: Outcome) -> None:
    """The one attempt of a flow mitmproxy sent, in the relay's format (failover.py)."""
    request = flow.request
    notes_of(flow)["attempts"] = [{
        "provider": lease.provider,
        "credential": lease.credential.label,
        "model": lease.model,
        "upstream": f"{request.scheme}://{request.host}:{request.port}{request.path.partition('?')[0]}",
        "status": flow.response.status_code if flow.response else None,
        "outcome": outcome,
        "ms": round((time.time() - request.timestamp_start) * 1000, 1),
    }]

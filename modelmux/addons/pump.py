"""Pump: one streamed answer of a failover attempt, from the upstream to the relay's
client. Its Gate (modelmux/attempt/__init__.py) holds the stream until its first real event,
so that a stream failing before it can still be retried; then it passes on as it
comes, with pings while the upstream is silent and `event: error` if it breaks off.
What the stream holds (its first real event, an error, the usage) is what its
transform wrote, never searched for in the bytes."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import httpx
from mitmproxy import ctx

from modelmux import attempt
from modelmux.attempt import exchange
from modelmux.addons.credentials import Credentials
from modelmux.addons.sender import Response
from modelmux.translate.assembly import Assembly
from modelmux.config.types import Credential
from modelmux.errors import GatewayError
from modelmux.attempt.exchange import FRAMING
from modelmux.translate.messages import PING
from modelmux.translate.meter import tokens_of
from modelmux.attempt.outcomes import Failure
from modelmux.translate.passthrough import AnthropicEvents
from modelmux.credentials.pools import Lease
from modelmux.routing import Decision
from modelmux.secrets import scrub, scrub_bytes
from modelmux.translate.translated_stream import TranslatedStream

logger = logging.getLogger(__name__)

_SKIP_RESPONSE_HEADERS = FRAMING | {"content-encoding", "content-type"}
# How a Pump gives a whole answer (an upstream that only streams, for a client that
# asked for JSON): its body, content type and the upstream's bytes (Failover.answer_whole).
Answered = Callable[[bytes, str, bytes], None]


class Pump:
    def __init__(self, candidate: Decision, lease: Lease | None, outgoing: exchange.Outgoing,
                 response: Response, out, trail: dict, secrets: list[Credential], notes: dict,
                 credentials: Credentials, answered: Answered) -> None:
        self.secrets = secrets  # kept out of the record (Plan.secrets)
        self.notes = notes  # the flow's
        self.credentials = credentials
        self.answered = answered
        self.candidate = candidate
        self.lease = lease
        self.response = response
        self.out = out
        self.trail = trail
        # Whatever it is, the transform reports what it wrote (attempt.Facts).
        self.transform: TranslatedStream | AnthropicEvents = (
            exchange.stream_transform(outgoing.translation, None, candidate.provider.secrets)
            if outgoing.translation is not None else AnthropicEvents(outgoing.restore))
        # An upstream that only streams, for a client that asked for one JSON answer: the
        # stream is put together here and answered whole.
        self.assembly = Assembly() if (outgoing.translation or {}).get("collect") else None
        self.gate = attempt.Gate()
        self.raw: list[bytes] | None = [] if "sent" in trail else None  # the upstream's bytes, for the record
        self.pulse = attempt.Pulse(ctx.options.modelmux_ping_interval, time.monotonic())
        self.timer: asyncio.TimerHandle | None = None

    async def run(self) -> Failure | None:
        if self.assembly is None:
            self.out.early()  # mitmproxy reads the head while the upstream thinks
        self._schedule()
        try:
            async for chunk in self.response.aiter_raw():
                if self.raw is not None:
                    self.raw.append(chunk)
                failure = self._take(self.transform.feed(chunk))
                if failure is not None:
                    return failure
                if self.gate.committed and self.transform.error is not None:
                    # The stream ended with an error event: nothing may follow it.
                    self._broke(self._error_message(), written=True)
                    return None
                if self.gate.committed:
                    await self.out.drain()
        except httpx.TransportError as e:
            if not self.gate.committed:
                raise  # an attempt that failed before the client got anything
            self._broke(str(e) or type(e).__name__)
            return None
        finally:
            if self.timer:
                self.timer.cancel()
        failure = self._take(self.transform.close())
        if failure is not None:
            return failure
        if self.assembly is not None:
            return self._answer_whole(self.assembly)
        if not self.gate.committed:
            provider = self.candidate.provider.name
            return self._failed("reset", f"provider '{provider}' ended its stream before the first event")
        if self.transform.error is not None:
            self._broke(self._error_message(), written=True)
            return None
        self.out.end()
        self.trail["outcome"] = self.response.status_code
        self._keep_answer()
        if self.lease is not None:
            usage = tokens_of(self.transform.usage or {}).for_pool()
            self.credentials.record(self.lease, self.response.status_code, usage=usage, headers=self.response.headers)
        return None

    def _take(self, pieces: list[bytes]) -> Failure | None:
        if self.assembly is not None:  # a whole answer: put together, never committed
            if self.transform.error is not None and not self.transform.content:
                return self._error_event()
            for piece in pieces:
                self.assembly.feed(piece)
            return None
        committed = self.gate.committed
        passed = self.gate.feed(pieces, self.transform)
        if self.gate.failed_with is not None:
            return self._error_event()
        if passed and not committed:
            self._head(passed)
            self.pulse.heard(time.monotonic())
            return None
        for piece in passed:
            self._send(piece)
        return None

    def _answer_whole(self, assembly: Assembly) -> Failure | None:
        message = assembly.message
        provider = self.candidate.provider.name
        if message is None or not assembly.ended:
            return self._failed("reset", f"provider '{provider}' ended its stream before the answer was complete")
        if assembly.error is not None:
            return self._failed(502, f"provider '{provider}' answered: {assembly.error['message']}")
        body = json.dumps(message, ensure_ascii=False).encode()
        self.answered(body, "application/json", b"".join(self.raw or ()))
        return None

    def _head(self, first: list[bytes]) -> None:
        """The answer's head, with the `first` pieces the client gets."""
        self.out.head(self.response.status_code, [*passed_headers(self.response.headers),
                                                  ("content-type", "text/event-stream"), ("cache-control", "no-cache")],
                      first)

    def _send(self, data: bytes) -> None:
        if data:
            self.out.chunk(data)
            self.pulse.heard(time.monotonic())

    def _failed(self, outcome: Any, message: str, error: GatewayError | None = None, said: str | None = None) -> Failure:
        return attempt.failed(self.candidate, self.trail["credential"], outcome, message, error, said)

    def _error_event(self) -> Failure:
        """An error before any content: Anthropic reports overload inside a 200 stream, and
        a translator ends a stream with one; that is a failed attempt like a 529."""
        found = self.transform.error  # a translator's keeps its wait (Gemini's retryDelay)
        assert found is not None
        # A passthrough upstream quotes the token it got, and the attempt's failure is logged.
        found = GatewayError(found.status, scrub(found.message, self.secrets), found.error_type, found.headers,
                             found.code)
        return self._failed(found.status, found.message, found)

    def _broke(self, detail: str, written: bool = False) -> None:
        """The answer ended mid-stream: the upstream broke off, or (`written`) the stream
        already holds the error event that ends it."""
        message = detail
        if not written:
            message, event = attempt.broke_off(self.candidate.provider.name, detail)
            self.out.chunk(event)
        self.out.end()
        self.trail["outcome"] = "reset"
        self.trail["error"] = message
        self._keep_answer()
        self.notes["error"] = message
        if self.lease is not None:
            self.credentials.record(self.lease, "reset")
        logger.warning("%s", message)

    def _error_message(self) -> str:
        """The message of the error event the stream ended with, which may quote a key."""
        error = self.transform.error
        assert error is not None
        return scrub(error.message, self.secrets)

    def _keep_answer(self) -> None:
        if self.raw is not None:
            self.trail["answer"] = answer_record(self.response, b"".join(self.raw), self.secrets)

    def _schedule(self) -> None:
        if (wait := self.pulse.wait(time.monotonic())) is not None:
            self.timer = asyncio.get_running_loop().call_later(wait, self._beat)

    def _beat(self) -> None:
        """Holding longer than a ping interval for the first event, the stream is given to
        the client (it hears the upstream is working); after that, pings fill silences."""
        if self.out.gone or self.assembly is not None:  # a whole answer has no pings
            return
        if self.pulse.beat(time.monotonic()):
            if self.gate.committed:
                self.out.chunk(PING)
            else:
                self._head([*self.gate.commit(), PING])
        self._schedule()


def answer_record(response: Response, body: bytes, secrets: Iterable[Credential]) -> dict[str, Any]:
    """An upstream's answer as the record keeps it: without the `secrets` it echoes, from
    the start (mitmweb's export shows a flow's notes while it is in flight)."""
    return {"status": response.status_code, "body": scrub_bytes(body, secrets),
            "headers": [[k, scrub(v, secrets)] for k, v in response.fields]}


def passed_headers(headers: dict[str, str]) -> list[tuple[str, str]]:
    """`headers` by lowercase name."""
    return [(k, v) for k, v in headers.items() if k not in _SKIP_RESPONSE_HEADERS]

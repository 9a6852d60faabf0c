"""Pump: one streamed answer of a failover attempt, from the upstream to the relay's
client. It holds the stream until its first real event, so that a stream failing
before it can still be retried, then passes it on as it comes, with pings while the
upstream is silent and `event: error` if it breaks off."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

import httpx
from mitmproxy import ctx

from modelmux import exchange
from modelmux.addons.credentials import Credentials
from modelmux.config.types import Credential
from modelmux.credentials.pools import Lease
from modelmux.errors import ERROR_TYPES, GatewayError
from modelmux.exchange import FRAMING
from modelmux.outcomes import Failure
from modelmux.routing import Decision
from modelmux.secrets import scrub, scrub_bytes
from modelmux.translate.assembly import Assembly
from modelmux.translate.messages import PING, error_event
from modelmux.translate.meter import Meter

logger = logging.getLogger(__name__)

# The first event that makes an Anthropic stream the client's: anything but
# message_start and ping. An error before it means the attempt failed.
_FIRST = re.compile(rb"(?:^|\n)event: ?(content_block_start|content_block_delta|message_delta|message_stop|error)\b")
_ERROR_TYPE = re.compile(rb'"type"\s*:\s*"([a-z_]+_error)"')
# Anthropic's table read backwards; overloaded_error is Anthropic's own 529.
_ERROR_STATUS = {error_type: status for status, error_type in ERROR_TYPES.items()}
_SKIP_RESPONSE_HEADERS = FRAMING | {"content-encoding", "content-type"}
# How a Pump tells the attempt that started it (the Failover's, which keeps its lease
# and trail) what became of it: the attempt failed (outcome, text, headers=None,
# reason=None), or its whole answer was given (body, content type, the upstream's bytes).
Failed = Callable[..., Failure]
Answered = Callable[[bytes, str, bytes], None]


class Pump:
    """One streamed answer: held until its first real event (so a stream that fails
    before it can still be retried), then passed on as it comes, with pings while
    the upstream is silent and `event: error` if it breaks off."""

    def __init__(self, candidate: Decision, lease: Lease | None, outgoing: exchange.Outgoing,
                 response: httpx.Response, out, trail: dict, secrets: list[Credential], notes: dict,
                 credentials: Credentials, failed: Failed, answered: Answered) -> None:
        self.secrets = secrets  # kept out of the record (Plan.secrets)
        self.notes = notes  # the flow's
        self.credentials = credentials
        self.failed = failed
        self.answered = answered
        self.candidate = candidate
        self.lease = lease
        self.response = response
        self.out = out
        self.trail = trail
        self.transform = exchange.stream_transform(outgoing.translation, outgoing.restore,
                                                   candidate.provider.secrets) or EventAligner()
        # An upstream that only streams, for a client that asked for one JSON answer: the
        # stream is put together here and answered whole.
        self.assembly = Assembly() if (outgoing.translation or {}).get("collect") else None
        self.held: list[bytes] = []
        self.committed = False
        self.meter = Meter()
        self.raw: list[bytes] | None = [] if "sent" in trail else None  # the upstream's bytes, for the record
        self.interval = ctx.options.modelmux_ping_interval
        self.last = time.monotonic()  # of the last bytes the client got, or of the first wait
        self.timer: asyncio.TimerHandle | None = None

    async def run(self) -> Failure | None:
        self._schedule()
        try:
            async for chunk in self.response.aiter_raw():
                if self.raw is not None:
                    self.raw.append(chunk)
                failure = self._take(self.transform.feed(chunk))
                if failure is not None:
                    return failure
                if self.committed and (error := getattr(self.transform, "error", None)) is not None:
                    # The translator ended the answer with an error event: nothing may follow it.
                    self._broke(error.message, written=True)
                    return None
                if self.committed:
                    await self.out.drain()
        except httpx.TransportError as e:
            if not self.committed:
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
        if not self.committed:
            provider = self.candidate.provider.name
            return self.failed("reset", f"provider '{provider}' ended its stream before the first event")
        self.out.end()
        self.trail["outcome"] = self.response.status_code
        if self.raw is not None:
            self.trail["answer"] = answer_record(self.response, b"".join(self.raw), self.secrets)
        if self.lease is not None:
            usage = self.meter.tokens().for_pool()
            self.credentials.record(self.lease, self.response.status_code, usage=usage)
        return None

    def _take(self, pieces: list[bytes]) -> Failure | None:
        for piece in pieces:
            if self.committed:
                self._send(piece)
                continue
            first = _FIRST.search(piece)
            if first is not None and first.group(1) == b"error":
                return self._error_event(piece[first.start():])
            if self.assembly is not None:  # a whole answer: put together, never committed
                self.assembly.feed(piece)
                continue
            self.held.append(piece)
            if first is not None:
                self._commit()
        return None

    def _answer_whole(self, assembly: Assembly) -> Failure | None:
        message = assembly.message
        provider = self.candidate.provider.name
        if message is None or not assembly.ended:
            return self.failed("reset", f"provider '{provider}' ended its stream before the answer was complete")
        if assembly.error is not None:
            return self.failed(502, f"provider '{provider}' answered: {assembly.error['message']}")
        body = json.dumps(message, ensure_ascii=False).encode()
        self.answered(body, "application/json", b"".join(self.raw or ()))
        return None

    def _commit(self) -> None:
        self.committed = True
        self.out.head(self.response.status_code, [*passed_headers(self.response.headers),
                                                  ("content-type", "text/event-stream"), ("cache-control", "no-cache")])
        held, self.held = self.held, []
        for piece in held:
            self._send(piece)

    def _send(self, data: bytes) -> None:
        self.out.chunk(data)
        self.meter.feed(data)
        self.last = time.monotonic()

    def _error_event(self, event: bytes) -> Failure:
        """Anthropic reports overload inside a 200 stream; before any content, that is a
        failed attempt like a 529."""
        found = _ERROR_TYPE.search(event)
        error_type = found.group(1).decode() if found else "api_error"
        status = _ERROR_STATUS.get(error_type, 500)
        # A passthrough upstream quotes the token it got, and the attempt's failure is logged.
        text = scrub(event.partition(b"data:")[2].strip().decode("utf-8", "replace"), self.secrets)
        # A translator keeps the upstream's error with its wait (Gemini's retryDelay).
        error = getattr(self.transform, "error", None)
        if isinstance(error, GatewayError):
            status, headers = error.status, error.headers
        else:
            headers = {}
        return self.failed(status, text, headers, reason="")

    def _broke(self, detail: str, written: bool = False) -> None:
        """The answer ended mid-stream: the upstream broke off, or (`written`) the
        translator already wrote the error event that ends it."""
        message = detail
        if not written:
            message = f"provider '{self.candidate.provider.name}' broke off its answer mid-stream: {detail}"
            self.out.chunk(error_event("api_error", message))
        self.out.end()
        self.trail["outcome"] = "reset"
        self.trail["error"] = message
        if self.raw is not None:
            self.trail["answer"] = answer_record(self.response, b"".join(self.raw), self.secrets)
        self.notes["error"] = message
        if self.lease is not None:
            self.credentials.record(self.lease, "reset")
        logger.warning("%s", message)

    def _schedule(self) -> None:
        if self.interval > 0:
            delay = max(0.0, self.last + self.interval - time.monotonic())
            self.timer = asyncio.get_running_loop().call_later(delay, self._beat)

    def _beat(self) -> None:
        """Holding longer than a ping interval for the first event, the stream is given to
        the client (it hears the upstream is working); after that, pings fill silences."""
        if self.out.gone or self.assembly is not None:  # a whole answer has no pings
            return
        if time.monotonic() - self.last >= self.interval:
            if not self.committed:
                self._commit()
            self.out.chunk(PING)
            self.last = time.monotonic()
        self._schedule()


class EventAligner:
    """Passes an Anthropic stream on in whole events only, so that whatever modelmux
    adds (a ping, an error) never lands inside one."""

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        data = self._rest + chunk if self._rest else chunk
        lf, crlf = data.rfind(b"\n\n"), data.rfind(b"\r\n\r\n")
        cut = max(lf + 2 if lf >= 0 else 0, crlf + 4 if crlf >= 0 else 0)
        self._rest = data[cut:]
        return [data[:cut]] if cut else []

    def close(self) -> list[bytes]:
        rest, self._rest = self._rest, b""
        return [rest] if rest.strip() else []


def answer_record(response: httpx.Response, body: bytes, secrets: Iterable[Credential]) -> dict[str, Any]:
    """An upstream's answer as the record keeps it: without the `secrets` it echoes, from
    the start (mitmweb's export shows a flow's notes while it is in flight)."""
    return {"status": response.status_code, "body": scrub_bytes(body, secrets),
            "headers": [[k, scrub(v, secrets)] for k, v in response.headers.multi_items()]}


def passed_headers(headers: httpx.Headers) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers.items() if k.lower() not in _SKIP_RESPONSE_HEADERS]

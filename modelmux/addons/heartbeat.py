"""Heartbeat: a translated stream's pulse. It pings while the upstream is silent, and
sends an error event if the upstream dies mid-answer.

Anthropic's own streams carry `ping` events, and clients take a long silence for a
dead connection. A stream callable only runs when upstream bytes arrive, so the pings
are written to the client from a timer instead (internals.write_chunk). That is safe
for translated streams only: their output is whole events, so every gap between
chunks is an event boundary. For the same reason, a translated stream whose upstream
breaks off can be ended with `event: error` and a proper end of the chunked body,
where mitmproxy alone would drop the connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from mitmproxy import ctx
from mitmproxy import http

from modelmux.addons.answers import loggable_url
from modelmux.addons.internals import CLIENT_GONE, can_write_chunks, write_chunk
from modelmux.addons.translator import translation_of
from modelmux.translate.messages import PING, error_event

logger = logging.getLogger(__name__)

@dataclass
class Pulse:
    flow: http.HTTPFlow
    last: float  # time.monotonic() of the last bytes the client got
    ended: bool = False  # the stream's end is with mitmproxy: nothing more may be written
    timer: asyncio.TimerHandle | None = None


class Heartbeat:
    def __init__(self) -> None:
        self._pulses: dict[str, Pulse] = {}

    def load(self, loader) -> None:
        loader.add_option(
            "modelmux_ping_interval",
            int,
            10,
            "Seconds of upstream silence after which a translated stream gets a ping event (0: never).",
        )

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        """Runs after the Translator, and wraps the stream callable it set."""
        response = flow.response
        if translation_of(flow) is None or response is None or not callable(response.stream) or not can_write_chunks(flow):
            return
        pulse = Pulse(flow, time.monotonic())
        inner = response.stream
        transform = getattr(inner, "transform", None)

        def stream(chunk: bytes) -> list[bytes]:
            out = inner(chunk)
            # An error event ends the answer (translated_stream.py): nothing may follow it.
            if not chunk or getattr(transform, "error", None) is not None:
                pulse.ended = True
            if out:
                pulse.last = time.monotonic()
            return out

        response.stream = stream
        self._pulses[flow.id] = pulse
        self._schedule(pulse)

    def response(self, flow: http.HTTPFlow) -> None:
        self._forget(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        pulse = self._forget(flow)
        if pulse is None or pulse.ended or flow.error is None or flow.error.msg == CLIENT_GONE:
            return
        pulse.ended = True
        provider = flow.metadata["modelmux"].get("provider")
        message = f"provider '{provider}' broke off its answer mid-stream: {flow.error.msg}"
        if write_chunk(flow, error_event("api_error", message), last=True):
            logger.warning("%s: %s", loggable_url(flow), message)

    def done(self) -> None:
        for pulse in self._pulses.values():
            if pulse.timer:
                pulse.timer.cancel()

    def _schedule(self, pulse: Pulse) -> None:
        interval = ctx.options.modelmux_ping_interval
        if interval > 0:
            delay = max(0.0, pulse.last + interval - time.monotonic())
            pulse.timer = asyncio.get_running_loop().call_later(delay, self._beat, pulse)

    def _beat(self, pulse: Pulse) -> None:
        if pulse.ended or pulse.flow.id not in self._pulses:
            return
        if time.monotonic() - pulse.last >= ctx.options.modelmux_ping_interval and write_chunk(pulse.flow, PING):
            pulse.last = time.monotonic()
        self._schedule(pulse)

    def _forget(self, flow: http.HTTPFlow) -> Pulse | None:
        pulse = self._pulses.pop(flow.id, None)
        if pulse and pulse.timer:
            pulse.timer.cancel()
        return pulse

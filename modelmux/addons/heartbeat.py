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

from modelmux import attempt
from modelmux.addons.answers import loggable_url
from modelmux.addons.internals import CLIENT_GONE, can_write_chunks, write_chunk
from modelmux.addons.notes import notes_of, read_notes
from modelmux.addons.streams import Pipe
from modelmux.translate.messages import PING

logger = logging.getLogger(__name__)


@dataclass
class Beating:
    flow: http.HTTPFlow
    pipe: Pipe  # the flow's stream callable, which times the bytes it passes
    pulse: attempt.Pulse  # when the next ping is due (shared with the relay's Pump)
    ended: bool = False  # the stream's end is with mitmproxy: nothing more may be written
    timer: asyncio.TimerHandle | None = None

    def over(self) -> bool:
        """Whether the stream ended: mitmproxy has its end, or it wrote an error event,
        which ends the answer (translated_stream.py, or the Pipe's when a stage raised):
        nothing may follow either."""
        if not self.ended:
            self.ended = (self.pipe.ended or self.pipe.failed
                          or getattr(self.pipe.transform, "error", None) is not None)
        return self.ended

    def catch_up(self) -> None:
        """The pulse hears the bytes the pipe passed since the last look."""
        heard = self.pipe.heard
        if heard is not None and heard > self.pulse.last:
            self.pulse.heard(heard)


class Heartbeat:
    def __init__(self) -> None:
        self._pulses: dict[str, Beating] = {}

    def load(self, loader) -> None:
        loader.add_option(
            "modelmux_ping_interval",
            int,
            10,
            "Seconds of upstream silence after which a translated stream gets a ping event (0: never).",
        )

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        """Runs after Direct, which set the stream: its Pipe times the bytes it passes,
        and the timer reads that time and the stream's end between chunks."""
        response = flow.response
        notes = read_notes(flow)
        if "translation" not in notes or response is None or not isinstance(response.stream, Pipe) \
                or not can_write_chunks(flow):
            return
        now = time.monotonic()
        pipe = response.stream
        pipe.heard = now
        pulse = Beating(flow, pipe, attempt.Pulse(ctx.options.modelmux_ping_interval, now))
        self._pulses[flow.id] = pulse
        self._schedule(pulse)

    def response(self, flow: http.HTTPFlow) -> None:
        self._forget(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        pulse = self._forget(flow)
        if pulse is None or pulse.over() or flow.error is None or flow.error.msg == CLIENT_GONE:
            return
        pulse.pipe.flush()  # what the upstream said before it broke off comes first
        pulse.ended = True
        message, event = attempt.broke_off(notes_of(flow).get("provider", "?"), flow.error.msg)
        if write_chunk(flow, event, last=True):
            logger.warning("%s: %s", loggable_url(flow), message)

    def done(self) -> None:
        for pulse in self._pulses.values():
            if pulse.timer:
                pulse.timer.cancel()

    def _schedule(self, beating: Beating) -> None:
        beating.catch_up()
        if (wait := beating.pulse.wait(time.monotonic())) is not None:
            beating.timer = asyncio.get_running_loop().call_later(wait, self._beat, beating)

    def _beat(self, beating: Beating) -> None:
        if beating.over() or beating.flow.id not in self._pulses:
            return
        beating.catch_up()
        if beating.pulse.beat(time.monotonic()):
            beating.pipe.flush()
            write_chunk(beating.flow, PING)
        self._schedule(beating)

    def _forget(self, flow: http.HTTPFlow) -> Beating | None:
        pulse = self._pulses.pop(flow.id, None)
        if pulse and pulse.timer:
            pulse.timer.cancel()
        return pulse

"""A streamed answer's one stream callable on mitmproxy's send path (`Pipe`), which every
addon with a say in the stream fills in, and pure transforms (feed/close) as its first
stage."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from modelmux.secrets import StreamScrubber
from modelmux.translate.messages import error_event

logger = logging.getLogger(__name__)

FAILED = "modelmux failed on this streamed answer (internal error; see the gateway log); the rest of it was not sent"

StreamCallable = Callable[[bytes], Iterable[bytes] | bytes]


class Transform(Protocol):
    def feed(self, chunk: bytes) -> list[bytes]: ...
    def close(self) -> list[bytes]: ...


class Watcher(Protocol):
    """Told what passed to the client, once per chunk (the Dashboard's meters)."""

    first_content: float | None  # when the first token passed; None: not yet

    def passed(self, pieces: list[bytes]) -> None: ...


class Pipe:
    """mitmproxy's `response.stream` for one flow: called per received chunk and once more
    with b"" at the end. The upstream's bytes go through `transform` (Direct: a
    translator, or the model restored; None: as they come), then `scrubber` (Echoes),
    and what comes out is shown to `watcher` (the Dashboard) and timed for the
    heartbeat (`heard`, once the Heartbeat sets it). An empty list means "nothing
    yet"; b"" would end a chunked HTTP/1.1 body early.

    The addons fill in one Pipe in hook order instead of each wrapping the callable
    the one before set: four nested wrappers cost four calls, lists and type checks
    per chunk (2.3 to 3.4 µs of a translated chunk's 9 to 12, bench/measure.py's
    streams fed one event a chunk).

    mitmproxy calls a stream callable for each chunk of a read and writes what each
    returns at once: a read that carries fifty events (a burst, a fast model, a gateway
    behind) became fifty writes, each waking the client. With `write` set (the
    Dashboard, for an HTTP/1.1 chunked answer), what the chunks of one read give waits,
    and one write takes it all once mitmproxy is done with the read (loop.call_soon),
    or with the end, before it. The first token does not wait: what came before it
    (message_start, its block's start, pings) goes out with it, in one write, as soon
    as it comes; each write before it cost the first token 70 to 180 µs (a send to the
    client, which wakes it). A paced stream's read holds one event: it is written as
    before, a loop turn later. Anything else written to the client (the Heartbeat's
    pings and error event) flushes first."""

    def __init__(self, transform: Transform | None = None) -> None:
        self.transform = transform
        self.scrubber: StreamScrubber | None = None
        self.watcher: Watcher | None = None
        self.raw: list[bytes] | None = None  # the upstream's chunks, when the Dashboard keeps them
        self.heard: float | None = None  # time.monotonic() of the last bytes out; None: not timed
        self.ended = False  # the end was passed: nothing may be written after it
        # Writes bytes to the client as a chunk of the answer (internals.write_chunk), once
        # the Dashboard knows it can: then what one read's chunks give goes in one write.
        self.write: Callable[[bytes], bool] | None = None
        self._pending: list[bytes] = []
        self.failed = False  # a stage raised: the client got an error event, and gets nothing more

    @classmethod
    def of(cls, stream: StreamCallable | bool) -> Pipe:
        """`stream` (a response's) as a Pipe: itself, or one passing the bytes as they come
        (True) or through a stream callable of another addon."""
        if isinstance(stream, Pipe):
            return stream
        return cls(None if stream is True else Called(stream))  # type: ignore[arg-type]

    @property
    def changes(self) -> bool:
        """Whether the client gets other bytes than the upstream sent, scrubbing aside."""
        return self.transform is not None

    def __call__(self, chunk: bytes) -> list[bytes]:
        """What the client gets now for `chunk` (b"": the end). A stage that raises gets the
        client one error event, then nothing more: mitmproxy would log the exception and
        leave the client waiting for the rest of a stream that never comes."""
        if self.failed:
            self.ended = self.ended or not chunk
            return []
        try:
            return self._pass(chunk)
        except Exception:
            logger.exception("modelmux failed on a streamed answer; the client gets an error event instead of the rest")
            self.failed, self.ended = True, self.ended or not chunk
            waiting, self._pending = self._pending, []
            return [b"".join(waiting) + error_event("api_error", FAILED)]

    def _pass(self, chunk: bytes) -> list[bytes]:
        watcher = self.watcher
        waits = self.write is not None and chunk and watcher is not None  # as the class says
        first = waits and watcher.first_content is None  # the first token, if this chunk brings it, goes out now
        if self.raw is not None:
            self.raw.append(chunk)
        transform = self.transform
        if chunk:
            out = transform.feed(chunk) if transform is not None else [chunk]
        else:
            self.ended = True
            out = transform.close() if transform is not None else []
        if (scrubber := self.scrubber) is not None:
            if len(out) == 1:
                out = scrubber.feed(out[0])
            elif out:
                out = [piece for given in out for piece in scrubber.feed(given)]
            if not chunk:
                out = out + scrubber.close()  # not +=: `out` may be a list the transform keeps
        if watcher is not None:
            watcher.passed(out)
        if out and self.heard is not None:
            self.heard = time.monotonic()
        if waits and not (first and watcher.first_content is not None):
            if out:
                if not self._pending:
                    asyncio.get_running_loop().call_soon(self.flush)
                self._pending += out
            return []
        if self._pending:  # the first token, or the end: what waits goes first
            out, self._pending = self._pending + out, []
        if len(out) > 1:  # mitmproxy writes each piece to the socket on its own: one write for all
            return [b"".join(out)]
        return out

    def flush(self) -> None:
        """Write what waits, in one write."""
        if self._pending and not self.ended and self.write is not None:
            data, self._pending = b"".join(self._pending), []
            self.write(data)


class Called:
    """A stream callable of another addon as a transform."""

    def __init__(self, stream: StreamCallable) -> None:
        self.stream = stream

    def feed(self, chunk: bytes) -> list[bytes]:
        return _pieces(self.stream(chunk))

    def close(self) -> list[bytes]:
        return _pieces(self.stream(b""))


def _pieces(out: Iterable[bytes] | bytes) -> list[bytes]:
    if isinstance(out, bytes):
        return [out] if out else []
    return [piece for piece in out if piece]

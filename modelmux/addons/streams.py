"""Pure stream transforms (feed/close) as mitmproxy stream callables."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

StreamCallable = Callable[[bytes], Iterable[bytes] | bytes]


class Transform(Protocol):
    def feed(self, chunk: bytes) -> list[bytes]: ...
    def close(self) -> list[bytes]: ...


class Stream:
    """A transform as mitmproxy's stream callable: called per received chunk and once
    more with b"" at the end. An empty list means "nothing yet"; b"" would end a
    chunked HTTP/1.1 body early. `transform` stays readable for its facts (a
    translator's `error`)."""

    def __init__(self, transform: Transform) -> None:
        self.transform = transform

    def __call__(self, chunk: bytes) -> list[bytes]:
        return self.transform.feed(chunk) if chunk else self.transform.close()


def as_stream(transform: Transform) -> Callable[[bytes], list[bytes]]:
    """`transform` as the callable mitmproxy's `response.stream` takes."""
    return Stream(transform)


class Piped:
    """`inner` (a stream callable, or True: the bytes as they come) with what it gives
    fed on through `transform`. `changes` says whether `inner` rewrites the upstream's
    bytes, which the Dashboard then keeps as they came too."""

    def __init__(self, inner: StreamCallable | bool, transform: Transform) -> None:
        self.inner = inner
        self.transform = transform
        self.changes = callable(inner) and getattr(inner, "changes", True)

    def __call__(self, chunk: bytes) -> list[bytes]:
        out = self.inner(chunk) if callable(self.inner) else chunk
        pieces = [out] if isinstance(out, bytes) else list(out)
        piped = [piece for given in pieces if given for piece in self.transform.feed(given)]
        return piped if chunk else piped + self.transform.close()

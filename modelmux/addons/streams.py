"""Pure stream transforms (feed/close) as mitmproxy stream callables."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


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

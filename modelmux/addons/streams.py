"""Pure stream transforms (feed/close) as mitmproxy stream callables."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Transform(Protocol):
    def feed(self, chunk: bytes) -> list[bytes]: ...
    def close(self) -> list[bytes]: ...


def as_stream(transform: Transform) -> Callable[[bytes], list[bytes]]:
    """mitmproxy calls this per received chunk and once more with b"" at the end. An
    empty list means "nothing yet"; b"" would end a chunked HTTP/1.1 body early."""

    def stream(chunk: bytes) -> list[bytes]:
        return transform.feed(chunk) if chunk else transform.close()

    return stream

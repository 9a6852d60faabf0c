"""The relay's stream aligner at every chunk boundary: whole events only."""

from __future__ import annotations

import pytest
from upstream import message_events

from modelmux.addons.pump import EventAligner

STREAM = b"".join(message_events("m"))


@pytest.mark.parametrize("size", [1, 2, 7, 64, 1000, len(STREAM)])
def test_the_aligner_passes_whole_events_only(size):
    aligner = EventAligner()
    out = []
    for start in range(0, len(STREAM), size):
        for piece in aligner.feed(STREAM[start:start + size]):
            assert piece.endswith(b"\n\n")
            out.append(piece)
    assert aligner.close() == []
    assert b"".join(out) == STREAM


def test_the_aligner_returns_a_trailing_partial_event_at_the_close():
    aligner = EventAligner()
    assert aligner.feed(b"event: ping\ndata: {}\n\nevent: message_stop\ndata:") == [b"event: ping\ndata: {}\n\n"]
    assert aligner.close() == [b"event: message_stop\ndata:"]

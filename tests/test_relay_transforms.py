"""The relay's stream helpers at every chunk boundary: whole events only, token counts
found wherever a chunk splits them."""

from __future__ import annotations

import pytest
from upstream import message_events

from modelmux.addons.credentials import UsageSniffer
from modelmux.addons.failover import EventAligner
from modelmux.pools import Usage

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


@pytest.mark.parametrize("size", [1, 3, 16, 97, len(STREAM)])
def test_the_sniffer_finds_the_counts_at_any_chunk_boundary(size):
    sniffer = UsageSniffer()
    for start in range(0, len(STREAM), size):
        sniffer.feed(STREAM[start:start + size])
    assert sniffer.usage() == Usage(input_tokens=12, output_tokens=7)


def test_the_sniffer_adds_cached_input_to_the_input():
    sniffer = UsageSniffer()
    sniffer.feed(b'data: {"usage": {"input_tokens": 5, "cache_read_input_tokens": 100, '
                 b'"cache_creation_input_tokens": 20, "output_tokens": 3}}\n\n')
    assert sniffer.usage() == Usage(input_tokens=125, output_tokens=3)

"""The protocol registry: one object per protocol, under the name routes.yaml gives it,
and everything that is looked up by protocol knows every one of them."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from modelmux.cli.capabilities import readings
from modelmux.oauth.kinds import KINDS
from modelmux.translate import gemini, openai_chat, openai_responses, passthrough
from modelmux.translate.protocol import SHAPING
from modelmux.translate.registry import PROTOCOLS


def test_the_schema_names_every_protocol_in_the_registry():
    schema = json.loads(resources.files("modelmux.config").joinpath("routes.schema.json").read_text())
    assert schema["$defs"]["provider"]["properties"]["protocol"]["enum"] == list(PROTOCOLS)


def test_each_package_exports_its_protocol():
    assert [p.PROTOCOL for p in (passthrough, openai_chat, openai_responses, gemini)] == list(PROTOCOLS.values())


@pytest.mark.parametrize("name", PROTOCOLS)
def test_a_protocol_is_translated_or_takes_no_shaping(name):
    protocol = PROTOCOLS[name]
    assert protocol.shaping <= SHAPING
    assert protocol.translated or not protocol.shaping  # an anthropic provider gets the request as sent
    assert (protocol.packs is None) == (protocol.packed_mark is None)


def test_logins_and_the_deep_check_know_every_protocol():
    assert {kind.protocol for kind in KINDS.values()} <= PROTOCOLS.keys()
    assert readings.READERS.keys() == PROTOCOLS.keys()

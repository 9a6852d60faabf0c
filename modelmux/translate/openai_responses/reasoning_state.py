"""Reasoning state carried through the client in a thinking block's signature. Pure.

With `store: false` OpenAI keeps nothing between turns: a reasoning item comes back
only if the next request carries its `encrypted_content`. An Anthropic client keeps
`{type, thinking, signature}` of a thinking block and nothing else, so the item's id
and encrypted content travel inside `signature`, marked so that modelmux recognises
its own: a real Anthropic signature (after a switch of model) or anything else is
never sent to OpenAI, which would reject it. The upstream model is part of the
payload because encrypted reasoning only decrypts for the model family that made it.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

PREFIX = "modelmux:openai-responses:v1:"  # Anthropic's signatures are plain base64: no ':'
MARK = PREFIX.encode()  # what every packed signature shows in a request body


@dataclass(frozen=True)
class Reasoning:
    item_id: str
    encrypted_content: str
    model: str


def pack(reasoning: Reasoning) -> str:
    payload = {"id": reasoning.item_id, "ec": reasoning.encrypted_content, "model": reasoning.model}
    return PREFIX + base64.b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()


def packed(signature: Any) -> bool:
    """Whether `signature` is one modelmux packed (for any model)."""
    return str(signature).startswith(PREFIX)


def unpack(signature: str | None, model: str) -> Reasoning | None:
    """The reasoning item a signature carries, if modelmux made it for `model`."""
    if not isinstance(signature, str) or not signature.startswith(PREFIX):
        return None
    try:
        payload = json.loads(base64.b64decode(signature[len(PREFIX) :], validate=True))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(payload, dict) or payload.get("model") != model:
        return None
    item_id, encrypted = payload.get("id"), payload.get("ec")
    if not (isinstance(item_id, str) and isinstance(encrypted, str) and encrypted):
        return None
    return Reasoning(item_id, encrypted, model)

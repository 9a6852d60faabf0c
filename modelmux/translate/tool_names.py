"""Tool names and tool-call ids that both sides accept, mapped reversibly.

OpenAI caps function names at 64 characters, and Claude Code's MCP tools
(`mcp__plugin_<plugin>_<server>__<tool>`) exceed that easily. Anthropic clients
validate tool-use ids against `^[a-zA-Z0-9_-]+$`, and some upstreams make ids such
as Kimi's `functions.Bash:0`. Both mappings are stateless: names are shortened
deterministically (the request's tool list restores them), and ids are encoded so
that the original comes back when the history returns upstream.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Iterable

MAX_NAME = 64
VALID_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
ENCODED_ID = "mmx_"  # marks an id modelmux encoded; never produced by an upstream on its own


def shorten(name: str) -> str:
    """`name` if it fits, else a 55-character prefix and a hash of the whole name."""
    if len(name) <= MAX_NAME:
        return name
    return f"{name[:55]}_{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def restore_map(names: Iterable[str]) -> dict[str, str]:
    """shortened → original, for the names that had to be shortened."""
    return {shorten(name): name for name in names if shorten(name) != name}


def client_id(upstream_id: str | None) -> str:
    """A tool-use id an Anthropic client accepts, from whatever id the upstream made."""
    if not upstream_id:
        return f"toolu_{secrets.token_hex(12)}"
    if VALID_ID.match(upstream_id) and not upstream_id.startswith(ENCODED_ID):
        return upstream_id
    return ENCODED_ID + base64.urlsafe_b64encode(upstream_id.encode()).decode().rstrip("=")


def upstream_id(client: str) -> str:
    """The id the upstream made, from the id the client sends back."""
    if not client.startswith(ENCODED_ID):
        return client
    encoded = client[len(ENCODED_ID) :]
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return client

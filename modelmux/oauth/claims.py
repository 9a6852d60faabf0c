"""What an OpenAI id_token says about the account. Pure.

A Codex login's id_token is a JWT whose payload carries the ChatGPT account under the
claim "https://api.openai.com/auth" (`chatgpt_account_id`, `chatgpt_plan_type`); the
Codex backend wants that account id in a `chatgpt-account-id` header. The signature is
not checked: the token came from the token endpoint over TLS, and modelmux only reads
its own user's account out of it.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

OPENAI_AUTH_CLAIM = "https://api.openai.com/auth"


def payload(jwt: str) -> dict[str, Any]:
    """A JWT's payload; {} for anything that is not one."""
    parts = jwt.split(".")
    if len(parts) != 3:
        return {}
    try:
        data = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return {}
    return data if isinstance(data, dict) else {}


def openai_account(id_token: str | None) -> tuple[str | None, str | None]:
    """(ChatGPT account id, email) from a Codex login's id_token."""
    if not id_token:
        return None, None
    claims = payload(id_token)
    found = claims.get(OPENAI_AUTH_CLAIM)
    auth: dict[str, Any] = found if isinstance(found, dict) else {}
    account = auth.get("chatgpt_account_id")
    email = claims.get("email")
    return (account if isinstance(account, str) else None), (email if isinstance(email, str) else None)

"""The credential pools as `modelmux status` and `GET /modelmux/credentials` show them:
JSON-able, keys only redacted (label and last four characters). A view of pools.py's
state, which knows nothing of it."""

from __future__ import annotations

from typing import Any

from modelmux.credentials.cooldowns import POLICIES, State, iso
from modelmux.credentials.pools import Member, Pools
from modelmux.oauth.holder import TokenHolder
from modelmux.secrets import redacted


def snapshot(pools: Pools) -> dict[str, Any]:
    """Every provider's pool with its breaker and credentials, and the providers without one."""
    now = pools.now()
    return {
        "at": iso(now),
        "providers": {
            name: {
                "strategy": pool.provider.strategy,
                "affinity": pool.provider.affinity,
                "cooldown_scope": pool.provider.cooldown_scope,
                "breaker": pool.breaker.describe(now),
                "credentials": [_describe(member, now) for member in pool.members],
            }
            for name, pool in pools.pools.items()
        },
        "without_credentials": dict(pools.unpooled),
        # The client's own logins heard on passthrough, by the fingerprint of their token.
        "client_logins": pools.logins.describe(now),
    }


# Worst first: what status shows when several cooldowns are active at once.
_SEVERITY: tuple[State, ...] = ("needs attention", "unhealthy", "cooling")
# Every state a credential is shown in (/metrics' modelmux_credential_state).
STATES = ("healthy", "cooling", "unhealthy", "needs attention", "needs login")


def _describe(member: Member, now: float) -> dict[str, Any]:
    active = sorted((c for c in member.cooldowns.values() if c.active(now)), key=lambda c: (c.model or "", c.until))
    states = {POLICIES[c.kind].state for c in active}
    credential = member.credential
    return {
        "label": credential.label,
        "key": redacted(credential),
        "priority": credential.priority,
        "weight": credential.weight,
        "max_concurrent": credential.max_concurrent,
        "state": "needs login" if credential.oauth is not None and credential.oauth.needs_login
        else next((s for s in _SEVERITY if s in states), "healthy"),
        "cooldowns": [
            {
                "model": c.model,
                "kind": c.kind,
                "until": iso(c.until),
                "seconds_left": round(c.until - now, 3),
                "reason": c.reason,
                "status": c.status,
                "firm": c.firm,
            }
            for c in active
        ],
        "in_flight": member.in_flight,
        "requests": member.requests,
        "errors": member.errors,
        "input_tokens": member.input_tokens,
        "output_tokens": member.output_tokens,
        "last_status": member.last_status,
        "quota": member.quota.describe(now) if member.quota is not None else None,  # quota.py
        **({"login": _login(credential.oauth)} if credential.oauth is not None else {}),
    }


def _login(holder: TokenHolder) -> dict[str, Any]:
    """An oauth credential's login, without its tokens."""
    token = holder.token
    return {
        "kind": token.kind,
        "email": token.email,
        "file": str(holder.path),
        "expires_at": iso(token.expires_at) if token.expires_at is not None else None,
        "needs_login": holder.needs_login,
    }

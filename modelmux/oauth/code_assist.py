"""The Google Cloud project of a Google login (gemini-cli, antigravity), found the way
gemini-cli finds it (packages/core/src/code_assist/setup.ts `setupUser`): Code Assist's
`loadCodeAssist` says which project an account already uses; an account not set up yet
is onboarded to its default tier with `onboardUser`, a long-running operation.

The request bodies and the reading of the answers are pure; `discover_project` is the
only function that talks to the network. No error message carries a token.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from modelmux.oauth.kinds import Kind
from modelmux.oauth.tokens import Token

# gemini-cli reads both, in this order; the project then goes in every request.
PROJECT_VARIABLES = ("GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_PROJECT_ID")
FREE_TIER = "free-tier"
LEGACY_TIER = "legacy-tier"  # gemini-cli's choice when no allowed tier is the default
POLL_INTERVAL = 5.0  # gemini-cli waits 5 s between looks at the onboarding operation
POLL_TIMEOUT = 60.0
REQUEST_TIMEOUT = 30.0
NEEDS_PROJECT = (
    "this Google account needs a Google Cloud project of your own (a Workspace or paid Code Assist account): "
    "set GOOGLE_CLOUD_PROJECT=YOUR-PROJECT and log in again, or add \"project_id\" to the token file"
)


class ProjectError(Exception):
    """The project could not be found; the message says why and what to do."""


def environment_project(environ: Mapping[str, str]) -> str | None:
    return next((environ[name] for name in PROJECT_VARIABLES if environ.get(name)), None)


def client_metadata(kind: Kind, project: str | None) -> dict[str, str]:
    # Antigravity names itself (CLIProxyAPI sdk/auth/antigravity.go); gemini-cli sends the "unspecified" values.
    metadata = {"ideType": "ANTIGRAVITY" if kind.name == "antigravity" else "IDE_UNSPECIFIED",
                "platform": "PLATFORM_UNSPECIFIED", "pluginType": "GEMINI"}  # fmt: skip
    if project:
        metadata["duetProject"] = project
    return metadata


def load_body(kind: Kind, project: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"metadata": client_metadata(kind, project)}
    if project:
        body["cloudaicompanionProject"] = project
    return body


def onboard_tier(loaded: Mapping[str, Any]) -> Mapping[str, Any]:
    """The allowed tier marked default; else gemini-cli's fallback, the legacy tier,
    which needs a project of the user's."""
    for tier in loaded.get("allowedTiers") or []:
        if isinstance(tier, Mapping) and tier.get("isDefault") and isinstance(tier.get("id"), str):
            return tier
    return {"id": LEGACY_TIER, "userDefinedCloudaicompanionProject": True}


def onboard_body(kind: Kind, tier_id: str, project: str | None) -> dict[str, Any]:
    """The free tier runs on a project Google manages: naming one gets "Precondition
    Failed" (setup.ts), so it is left out there."""
    if tier_id == FREE_TIER:
        return {"tierId": tier_id, "metadata": client_metadata(kind, None)}
    return {"tierId": tier_id, **load_body(kind, project)}


def project_in(value: Any) -> str | None:
    """`cloudaicompanionProject`: a project id, or a project object with one."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def loaded_project(loaded: Mapping[str, Any], project: str | None) -> str | None:
    """The project of an account that is set up (it has a `currentTier`); None: onboard it.
    Raises ProjectError for an account that cannot be used as it is."""
    if loaded.get("currentTier"):
        found = project_in(loaded.get("cloudaicompanionProject")) or project
        if found is None:
            raise ProjectError(needs_project(loaded))
        return found
    for tier in loaded.get("ineligibleTiers") or []:
        if isinstance(tier, Mapping) and tier.get("reasonCode") == "VALIDATION_REQUIRED" and tier.get("validationUrl"):
            why = tier.get("reasonMessage") or "no reason given"
            raise ProjectError(f"Google asks you to verify this account first ({why}): open {tier['validationUrl']}, "
                               "then log in again")  # fmt: skip
    return None


def onboarded_project(operation: Mapping[str, Any]) -> str | None:
    """The project of a finished onboarding operation; None while it runs."""
    if not operation.get("done"):
        return None
    response = operation.get("response")
    return project_in(response.get("cloudaicompanionProject")) if isinstance(response, Mapping) else None


def needs_project(loaded: Mapping[str, Any]) -> str:
    """Why no project came back: the tiers Google says the account cannot have, else
    the need for a project of the user's."""
    reasons = [str(t["reasonMessage"]) for t in loaded.get("ineligibleTiers") or []
               if isinstance(t, Mapping) and t.get("reasonMessage")]  # fmt: skip
    return f"{'; '.join(reasons)}; {NEEDS_PROJECT}" if reasons else NEEDS_PROJECT


def discover_project(client: httpx.Client, kind: Kind, token: Token, environ: Mapping[str, str],
                     sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                     timeout: float = POLL_TIMEOUT) -> str:  # fmt: skip
    """The login's project: loadCodeAssist, then onboardUser when the account has no
    tier yet, looking at the operation every POLL_INTERVAL for up to `timeout` seconds.
    Raises ProjectError."""
    base = (token.base_url or kind.base_url or "").rstrip("/")
    headers = {"authorization": f"Bearer {token.access_token}"}
    wanted = environment_project(environ)

    def call(method: str, path: str, body: Any = None) -> Mapping[str, Any]:
        try:
            response = client.request(method, f"{base}/v1internal{path}", headers=headers, json=body,
                                      timeout=REQUEST_TIMEOUT)  # fmt: skip
        except httpx.HTTPError as e:
            raise ProjectError(f"cannot reach Code Assist at {base} ({type(e).__name__}: {e})") from e
        name = path.lstrip(":/").split("/")[0]
        if response.status_code != 200:
            raise ProjectError(f"Code Assist's {name} answered {response.status_code}: {google_error(response)}")
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, Mapping):
            raise ProjectError(f"Code Assist's {name} answered something other than a JSON object")
        return data

    loaded = call("POST", ":loadCodeAssist", load_body(kind, wanted))
    found = loaded_project(loaded, wanted)
    if found:
        return found
    tier = onboard_tier(loaded)
    if tier.get("userDefinedCloudaicompanionProject") and not wanted:
        raise ProjectError(needs_project(loaded))
    body = onboard_body(kind, str(tier["id"]), wanted)
    operation = call("POST", ":onboardUser", body)
    deadline = clock() + timeout
    while not operation.get("done"):
        if clock() + POLL_INTERVAL > deadline:
            raise ProjectError(f"Google was still setting up Code Assist for this account after {timeout:.0f} s; "
                               "log in again in a minute")  # fmt: skip
        sleep(POLL_INTERVAL)
        # gemini-cli looks at the named operation; older clients (CLIProxyAPI) repeat onboardUser.
        name = operation.get("name")
        operation = call("GET", f"/{name}") if isinstance(name, str) and name else call("POST", ":onboardUser", body)
    found = onboarded_project(operation) or wanted
    if found is None:
        raise ProjectError(needs_project(loaded))
    return found


def google_error(response: httpx.Response) -> str:
    """google.rpc.Status's message, cut short; never the request."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    message = error.get("message") if isinstance(error, Mapping) else None
    return str(message)[:200] if message else response.reason_phrase or "no details"

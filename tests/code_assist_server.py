"""Code Assist's account setup (`loadCodeAssist`, `onboardUser` and its operation), scripted
on top of `upstream.Upstream`: what a Google login's project discovery talks to.

    with Upstream() as server:
        server.reply = CodeAssist(loaded=setup_done("proj-1"))
        ... discover against server.url ...

The answers follow gemini-cli's code_assist/types.ts: loadCodeAssist gives `currentTier`
and `cloudaicompanionProject` for an account that is set up, `allowedTiers` for one that
is not; onboardUser gives a long-running operation, finished after `polls` more looks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from upstream import Behaviour, Received, Reply

OPERATION = "operations/onboard-7"


def setup_done(project: Any = "proj-1", tier: str = "standard-tier") -> dict[str, Any]:
    """An account with a tier: its project is in the answer (a string, or {id, name})."""
    answer: dict[str, Any] = {"currentTier": {"id": tier, "name": tier}, "allowedTiers": [{"id": tier}]}
    if project is not None:
        answer["cloudaicompanionProject"] = project
    return answer


def not_set_up(tier: str = "free-tier", user_project: bool = False, **extra: Any) -> dict[str, Any]:
    """An account without a tier yet: `tier` is the default allowed one."""
    return {"allowedTiers": [{"id": "legacy-tier", "userDefinedCloudaicompanionProject": True},
                             {"id": tier, "isDefault": True, "userDefinedCloudaicompanionProject": user_project}],
            **extra}  # fmt: skip


def google_error(status: int, message: str) -> Reply:
    return Reply(status, json.dumps({"error": {"code": status, "message": message, "status": "X"}}).encode())


@dataclass
class CodeAssist:
    loaded: dict[str, Any]
    project: str = "proj-onboarded"  # what onboarding gives
    polls: int = 0  # looks at the operation before it is done
    named: bool = True  # the operation has a name to GET (gemini-cli); False: onboardUser is repeated
    looks: int = 0
    calls: list[str] = field(default_factory=list)

    def __call__(self, request: Received) -> Behaviour:
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return google_error(401, "Request is missing required authentication credential.")
        method = request.path.removeprefix("/v1internal").lstrip(":/")
        self.calls.append(method)
        if request.method == "POST" and method == "loadCodeAssist":
            return Reply(200, json.dumps(self.loaded).encode())
        if request.method == "POST" and method == "onboardUser":
            return self._operation(first=self.calls.count("onboardUser") == 1)
        if request.method == "GET" and method == OPERATION and self.named:
            return self._operation(first=False)
        return google_error(404, f"no method {request.method} {request.path}")

    def _operation(self, first: bool) -> Reply:
        if not first:
            self.looks += 1
        done = self.looks >= self.polls
        answer: dict[str, Any] = {"done": done}
        if self.named:
            answer["name"] = OPERATION
        if done:
            answer["response"] = {"cloudaicompanionProject": {"id": self.project, "name": "Gemini Code Assist"}}
        return Reply(200, json.dumps(answer).encode())

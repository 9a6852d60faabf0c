"""What a request's failed attempts add up to: whether another round is worth it, when a
credential it met recovers, and the error the client gets when nothing answered.

Pure: the failover relay (modelmux/addons/failover.py) runs the attempts and hands
their failures here; `now` is wall-clock seconds.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from modelmux.credentials.cooldowns import POLICIES, Kind, Outcome, iso, retry_after, span, upstream_delay
from modelmux.credentials.pools import Verdict
from modelmux.credentials.refusals import AllBusy, AllCooling, Refusal
from modelmux.errors import GatewayError
from modelmux.routing import Decision

# A second round after upstream errors: the pause before it, when the upstreams named no
# wait, and the longest wait one may name for the round still to happen. Claude Code
# would give up on nothing sooner; a longer wait goes back to the client as said.
ROUND_PAUSE = 0.5
ROUND_PAUSE_CAP = 2.0


@dataclass
class Failure:
    """An attempt that got nothing to the client."""

    candidate: Decision
    label: str  # the credential's, or what stands for none (credentials.label_of)
    outcome: Outcome | None  # None: not sent (e.g. the provider cannot take this request)
    kind: Kind  # the row of the cooldown table (for a credential: its pool's verdict)
    message: str
    status: int  # what the client gets if this is the last word
    body: bytes  # ... and its body: the upstream's error, or modelmux's
    headers: dict[str, str] = field(default_factory=dict)  # ... and the upstream's Retry-After
    verdict: Verdict | None = None
    said: str = ""  # the upstream's words (scrubbed), or modelmux's: what its pool reads for hints
    said_headers: dict[str, str] = field(default_factory=dict)  # ... and the answer's headers

    @property
    def try_same_provider(self) -> bool:
        return self.outcome is not None and POLICIES[self.kind].try_another

    @property
    def final(self) -> bool:
        """The request itself is at fault: no other credential or provider would do better."""
        return self.outcome is not None and self.kind == "request"

    @property
    def upstream(self) -> tuple[str, str]:
        return self.candidate.provider.name, self.label

    def describe(self) -> str:
        return f"{self.candidate.provider.name}/{self.label} {self.outcome or 'not sent'}"

    def wait(self, now: float) -> float | None:
        """Seconds the upstream said to wait with this answer, if it said (the verdict's
        cooldown may be an older block that this answer left in place)."""
        return upstream_delay(self.headers, None, now)


@dataclass
class Outcomes:
    """Why a request got no answer (so far)."""

    failures: list[Failure] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)  # pools that refused before the request tried any of theirs
    exhausted: list[Refusal] = field(default_factory=list)  # ... and after: they only add when the untried recover

    @property
    def over(self) -> bool:
        """The request itself was at fault: nothing more is tried."""
        return bool(self.failures) and self.failures[-1].final

    def again(self, candidates: list[Decision], max_attempts: int, admits: Callable[[str], bool],
              now: float) -> tuple[list[Decision], float] | None:
        """A second round, after every candidate failed or refused: the providers that
        answered a host error (5xx, 529, a reset, a stream that ended before its first
        event) and whose breaker is closed, in their order, and the pause before it.
        Such an error says the host stumbled, and both CLIProxyAPI (a round after the
        closest cooldown) and LiteLLM (retries after Retry-After) send the request again;
        a client that gets the error would only do the same. None: no round, because the
        request was at fault, no attempt is left, nothing failed that way, or an upstream
        named a wait longer than ROUND_PAUSE_CAP."""
        if self.over or len(self.failures) >= max_attempts:
            return None
        host = [f for f in self.failures if f.kind == "transient" and f.outcome is not None]
        names = {f.candidate.provider.name for f in host}
        chosen = [c for c in candidates if c.provider.name in names and admits(c.provider.name)]
        if not chosen:
            return None
        waits = [w for f in host if (w := f.wait(now)) is not None]
        pause = max(waits) if waits else ROUND_PAUSE
        return (chosen, pause) if pause <= ROUND_PAUSE_CAP else None

    def single_upstream(self) -> bool:
        """Every attempt went to one upstream (one credential, or none, of one provider)
        and no pool refused: its own error is the client's answer."""
        return bool(self.failures) and not self.refusals and len({f.upstream for f in self.failures}) == 1

    def earliest_recovery(self) -> float | None:
        """When the first credential this request met recovers from its block; None when
        a credential it tried is not blocked (a soft cooldown only orders: the gateway
        would send the next request to it at once, so modelmux names no wait of its own).
        Attempts without a credential (auth: passthrough or none) have no pool to say."""
        pooled = [f.verdict for f in self.failures if f.outcome is not None and f.verdict is not None]
        if any(v.cooldown is None or not v.cooldown.firm for v in pooled):
            return None
        earliest = [v.cooldown.until for v in pooled if v.cooldown]
        earliest += [r.earliest for r in self.refusals + self.exhausted if r.earliest is not None]
        return min(earliest, default=None)

    def named_wait(self, now: float) -> float | None:
        """The shortest wait the upstreams themselves named with their errors, when each
        one tried named one (a 503 or 529 with Retry-After, say) and no pool refused:
        their word, passed on, not a wait of modelmux's own. None when any of them named
        none, since that one may answer the next request at once."""
        sent = [f for f in self.failures if f.outcome is not None]
        waits = [f.wait(now) for f in sent]
        if not sent or self.refusals or any(w is None for w in waits):
            return None
        return now + min(w for w in waits if w is not None)


def summary(model: str, outcomes: Outcomes, now: float) -> GatewayError:
    """Several attempts or pools said no: 429 if every one of them was a rate limit,
    else 503 with what each said."""
    failures, refusals = outcomes.failures, outcomes.refusals
    first = outcomes.earliest_recovery()
    recovery = f"; the first recovers at {iso(first)} (in {span(first - now)})" if first else ""
    wait = first or outcomes.named_wait(now)
    headers = {"retry-after": str(retry_after(wait, now))} if wait else {}
    parts = [f.describe() for f in failures] + [r.message for r in refusals]
    limited = all(f.kind == "rate_limit" for f in failures) and all(isinstance(r, AllCooling | AllBusy) for r in refusals)
    if limited:
        return GatewayError(429, f"every upstream for model '{model}' is rate limited: {'; '.join(parts)}{recovery}",
                            "rate_limit_error", headers)
    attempts = f"{len(failures)} attempt{'s' * (len(failures) != 1)}"
    return GatewayError(503, f"no upstream could serve model '{model}' ({attempts}): {'; '.join(parts)}{recovery}",
                        "overloaded_error", headers)


def message_of(body: bytes) -> str:
    """An Anthropic error body's message, or the start of whatever else it is."""
    try:
        return str(json.loads(body)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return body.decode("utf-8", "replace")[:300]

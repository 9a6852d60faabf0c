"""The attempts of one request, decided without I/O: which upstream and credential
next, when an answer becomes the client's, and which error the client gets when
nothing is left. Pure: no mitmproxy, no network, no clock of its own.

Both send paths drive it, as h11's Connection is driven by whoever owns the socket:
mitmproxy's own path (a stream with one possible upstream, at most one attempt:
modelmux/addons/direct.py) and the failover relay (modelmux/addons/failover.py). A
driver asks `Attempts` for a step, does it, and hands back what came of it:

    step = attempts.start()
    while step is not None and not isinstance(step, GiveUp):
        match step:
            case Pick(): step = attempts.picked(lease_or_refusal)   # from the pool
            case Send(): step = attempts.sent(failure_or_none)      # None: answered
            case Pause(): step = attempts.paused()
    # None: an attempt answered; GiveUp: the client's error

What the drivers share besides (each job once): how an upstream's error answer or a
failed connection becomes a `Failure`, how a whole answer is translated, when a held
stream is committed (`Gate`), when a silent stream gets a ping (`Pulse`), and the
event that ends a stream that broke off (`broke_off`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from modelmux.attempt import exchange
from modelmux.attempt.outcomes import Failure, Outcomes, message_of, summary
from modelmux.config.types import Credential
from modelmux.credentials.cooldowns import RETRY_HEADERS, Outcome, TransportFailure, classify, names_a_wait, retry_after, upstream_delay
from modelmux.credentials.pools import Lease, Verdict
from modelmux.credentials.refusals import Refusal
from modelmux.errors import GatewayError
from modelmux.routing import Decision
from modelmux.translate.messages import error_event

RATE_LIMIT_PREFIX = "anthropic-ratelimit-"  # Anthropic's rate-limit headers (protocols: the unified ones)

# -- the steps a driver is asked to take ----------------------------------------------


@dataclass(frozen=True)
class Pick:
    """Lease a credential of `candidate`'s provider other than those `tried`, and hand
    back the lease or the pool's refusal (`Attempts.picked`)."""

    candidate: Decision
    tried: frozenset[str]


@dataclass(frozen=True)
class Send:
    """Send the request to `candidate` with `lease` (None: the provider has no pool), and
    hand back the attempt's Failure, or None once its answer is the client's."""

    candidate: Decision
    lease: Lease | None


@dataclass(frozen=True)
class Pause:
    """Wait `seconds` before the next round (`Attempts.paused` when done)."""

    seconds: float


@dataclass(frozen=True)
class GiveUp:
    """Nothing answered: the client gets this error. `headers` are added to the
    content type (a wait the upstream or the pool named)."""

    status: int
    headers: dict[str, str]
    body: bytes
    message: str


Step = Pick | Send | Pause | GiveUp | None


class Attempts:
    """The attempts of one request. Order: the route's providers (those whose breaker is
    open last: they are still tried when the others fail), each with its credentials
    as the pool hands them out, at most `max_attempts` attempts; then, after errors
    that say the host stumbled, a second round (Outcomes.again). A request the upstream
    rejects as faulty is not tried again. `now` is wall-clock seconds."""

    def __init__(self, candidates: list[Decision], max_attempts: int, admits: Callable[[str], bool],
                 now: Callable[[], float], jitter: Callable[[float, float], float] = random.uniform) -> None:
        self.candidates = candidates
        self.max_attempts = max_attempts
        self.admits = admits
        self.now = now
        self.jitter = jitter  # requests that failed together spread out
        self.outcomes = Outcomes()
        self.rounds = 1
        self.answered = False
        self._steps = self._run()

    def start(self) -> Step:
        return self._next(None)

    def picked(self, picked: Lease | Refusal) -> Step:
        return self._next(picked)

    def sent(self, failure: Failure | None) -> Step:
        """What became of the last Send: None once its answer is the client's."""
        return self._next(failure)

    def paused(self) -> Step:
        return self._next(None)

    def _next(self, fed: Any) -> Step:
        try:
            return self._steps.send(fed)
        except StopIteration:  # answered, or the GiveUp was taken
            return None

    def _run(self) -> Generator[Step, Any, None]:
        candidates = sorted(self.candidates, key=lambda c: not self.admits(c.provider.name))
        if (yield from self._round(candidates, first=True)):
            return
        again = self.outcomes.again(candidates, self.max_attempts, self.admits, self.now())
        if again is not None:
            chosen, pause = again
            yield Pause(pause * self.jitter(1.0, 1.25))
            self.rounds = 2
            if (yield from self._round(chosen, first=False)):
                return
        yield self._give_up()

    def _round(self, candidates: list[Decision], first: bool) -> Generator[Step, Any, bool]:
        """Each candidate in turn, each of its credentials as the pool hands them out;
        True once one answered."""
        outcomes = self.outcomes
        for candidate in candidates:
            provider = candidate.provider
            tried: set[str] = set()
            while len(outcomes.failures) < self.max_attempts:
                lease = None
                if provider.credentials:
                    picked = yield Pick(candidate, frozenset(tried))
                    if isinstance(picked, Refusal):
                        # A refusal after this request tried some: only its recovery adds.
                        (outcomes.refusals if first and not tried else outcomes.exhausted).append(picked)
                        break
                    lease = picked
                failure = yield Send(candidate, lease)
                if failure is None:
                    self.answered = True
                    return True
                outcomes.failures.append(failure)
                if failure.final:
                    return False
                if lease is None or not failure.try_same_provider or not self.admits(provider.name):
                    break  # an open breaker: the host fails, and another key would wait for it too
                tried.add(lease.credential.label)
        return False

    def _give_up(self) -> GiveUp:
        """What the upstream said when one upstream was all there was (or the request was
        at fault), with the pool's wait when the upstream named none; else a summary."""
        outcomes, now = self.outcomes, self.now()
        failures, refusals = outcomes.failures, outcomes.refusals
        last = failures[-1] if failures else None
        if last is not None and (last.final or outcomes.single_upstream()):
            headers = dict(last.headers)
            first = outcomes.earliest_recovery()
            if not last.final and first is not None and not names_a_wait(headers):
                headers["retry-after"] = str(retry_after(first, now))
            return GiveUp(last.status, headers, last.body, last.message)
        if not failures and len(refusals) == 1:
            error = refusals[0].error()
        else:
            error = summary(self.candidates[0].requested, outcomes, now)
        # A passthrough attempt's rate limits are the client's own account's: passed on.
        passed = {k: v for f in failures if f.candidate.provider.passthrough
                  for k, v in f.headers.items() if k.startswith(RATE_LIMIT_PREFIX)}
        return GiveUp(error.status, {**passed, **error.headers}, error.body(), error.message)


# -- what an attempt's failure is ---------------------------------------------------------


def waits_of(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers of an answer that name a wait, as the client gets them."""
    return {k.lower(): v for k, v in headers.items() if k.lower() in RETRY_HEADERS}


def rate_limits_of(headers: Mapping[str, str]) -> dict[str, str]:
    """Anthropic's rate-limit headers of an answer to the client's own token (passthrough),
    which its error passes on unchanged whichever path sent it: Claude Code's status line
    and its "limit reached, resets at" message read them."""
    return {k.lower(): v for k, v in headers.items() if k.lower().startswith(RATE_LIMIT_PREFIX)}


def refused(candidate: Decision, label: str, status: int, reason: str, text: str, headers: Mapping[str, str],
            client_credential: str | None, now: float) -> Failure:
    """An upstream's error answer (`text`, its keys scrubbed) as the client would get it:
    in Anthropic's envelope (exchange.upstream_failure), with the upstream's wait, or
    one only its body named (Codex's resets_in_seconds) as Retry-After."""
    provider = candidate.provider
    shown, body, added = exchange.upstream_failure(provider, status, reason, text, candidate.route.source,
                                                   client_credential)
    waits = waits_of({**headers, **added})
    if provider.passthrough:
        waits.update(rate_limits_of(headers))
    if not names_a_wait(waits) and (wait := upstream_delay({}, text, now)):
        waits["retry-after"] = str(math.ceil(wait))
        waits["retry-after-ms"] = str(round(wait * 1000))
    return Failure(candidate, label, shown, classify(shown, text), message_of(body), shown, body, waits,
                   said=text, said_headers={**headers, **added})


def failed(candidate: Decision, label: str, outcome: Outcome, message: str, error: GatewayError | None = None,
           said: str | None = None) -> Failure:
    """An attempt that ended without an answer from the upstream to pass on as it came:
    no connection, a timeout, a stream that broke or reported an error before its
    first event, or an answer modelmux could not read. `error`: the client's error for
    it, when not a plain 502 or 504 with `message`; `said`: the upstream's words, which
    classify the failure."""
    if error is None:
        error = GatewayError(transport_status(outcome) if isinstance(outcome, str) else outcome, message)
    return Failure(candidate, label, outcome, classify(outcome, said or message), error.message, error.status,
                   error.body(), waits_of(error.headers), said=said or message, said_headers=dict(error.headers))


def judged(failure: Failure, verdict: Verdict | None) -> Failure:
    """`failure` as the credential's pool judged it (its row of the cooldown table, and
    its cooldown), once the driver recorded it."""
    return failure if verdict is None else replace(failure, kind=verdict.kind, verdict=verdict)


def not_sent(candidate: Decision, label: str, error: GatewayError) -> Failure:
    """The provider cannot take this request at all (exchange.prepare refused it)."""
    return Failure(candidate, label, None, "request", error.message, error.status, error.body())


# The words for a failed connection, on both paths: `where` names the provider and its URL.
def upstream_at(provider: str, origin: str) -> str:
    """The `where` of the words below: a provider and its server (scheme://host:port,
    never a path or a query, which may hold a key), as both send paths name it."""
    return f"provider '{provider}' ({origin})"


def not_answered(where: str, seconds: float) -> str:
    return f"{where} did not answer within {seconds:g} s (response_timeout)"


def not_connected(where: str, seconds: float) -> str:
    return f"{where} could not be connected to within {seconds:g} s (connect_timeout)"


def cannot_connect(where: str, detail: str) -> str:
    return f"{where} cannot be connected to: {detail}"


def tls_failed(where: str, detail: str) -> str:
    return f"TLS connection to {where} failed: {detail}"


def closed(where: str, detail: str) -> str:
    return f"{where} closed the connection without a complete answer: {detail}"


def went_silent(where: str, seconds: float) -> str:
    return f"{where} went silent for {seconds:g} s"


def transport_status(outcome: TransportFailure) -> int:
    return 504 if outcome == "timeout" else 502


# -- an answer --------------------------------------------------------------------------


def whole(provider: str, secrets: Iterable[Credential], translation: dict[str, Any] | None, restore: str | None,
          status: int, raw: bytes) -> tuple[bytes, str] | GatewayError:
    """A successful whole answer as the client's body and content type, or the error the
    client gets instead: a translated answer that is not JSON, or one that says the
    upstream failed after all (a Responses `status: failed`)."""
    try:
        return exchange.whole_answer(translation, restore, raw)
    except ValueError:
        return GatewayError(502, f"provider '{provider}' answered HTTP {status} with a body that is not JSON")
    except GatewayError as e:
        return exchange.failed_answer(provider, e, secrets)


def broke_off(provider: str, detail: str) -> tuple[str, bytes]:
    """A stream the client already has broke off: the message, and the event that ends it."""
    message = f"provider '{provider}' broke off its answer mid-stream: {detail}"
    return message, error_event("api_error", message)


class Facts(Protocol):
    """What a stream transform knows of the Anthropic stream it wrote (StreamWriter's
    reported values; passthrough.AnthropicEvents for an Anthropic upstream's)."""

    content: bool  # more than message_start and pings: the attempt is the client's
    error: GatewayError | None  # the error event that ended it, with the status its type stands for


class Gate:
    """When a stream becomes the client's: held while it could still be retried (until
    its first real event), then passed on as it comes. Fed each piece with the facts of
    the transform that wrote it; returns what the client gets now. An error before
    the first real event is a failed attempt (`failed_with`)."""

    def __init__(self) -> None:
        self.committed = False
        self.failed_with: GatewayError | None = None  # the error event of a failed attempt
        self._held: list[bytes] = []

    def feed(self, pieces: list[bytes], facts: Facts) -> list[bytes]:
        if self.committed:
            return pieces
        if facts.error is not None and not facts.content:
            self.failed_with = facts.error
            self._held.clear()
            return []
        self._held.extend(pieces)
        return self.commit() if facts.content else []

    def commit(self) -> list[bytes]:
        """From now on the stream is the client's (its first real event came, or the
        client needed to hear that the upstream works)."""
        self.committed = True
        held, self._held = self._held, []
        return held


@dataclass
class Pulse:
    """When a silent stream gets a ping: `interval` seconds (0: never) after the client
    last got bytes. Times are time.monotonic()'s."""

    interval: float
    last: float

    def heard(self, now: float) -> None:
        self.last = now

    def wait(self, now: float) -> float | None:
        """Seconds until the next look, None when pings are off."""
        return max(0.0, self.last + self.interval - now) if self.interval > 0 else None

    def beat(self, now: float) -> bool:
        """Whether a ping is due now (and counted as sent)."""
        if self.interval <= 0 or now - self.last < self.interval:
            return False
        self.last = now
        return True


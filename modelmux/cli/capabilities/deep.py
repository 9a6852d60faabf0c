"""One deep check: the probes sent to one provider and model, in order, each built by the
gateway's own translation (exchange.prepare) from a request Claude Code could send.

What one probe learns shapes the next: a field the provider refuses in the first request
is dropped (or the other max-tokens field used) for every later one, as the proposed
routes.yaml line would have the gateway send it, and the tool-call turn thinks only when
the model showed reasoning. Each request waits at most `timeout` seconds; after two in a
row got no answer the rest are not sent. Every upstream word kept is scrubbed of the
provider's credentials.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, replace
from typing import Any

import httpx

from modelmux.cli import probe
from modelmux.cli.capabilities import limits, readings, requests
from modelmux.cli.capabilities.findings import Facts, Finding, Report, excerpt, model_lines, provider_lines
from modelmux.cli.capabilities.readings import Reading
from modelmux.config.types import Config, Shape, route_for
from modelmux.errors import GatewayError
from modelmux.attempt.exchange import Outgoing, prepare, stream_transform, upstream_json, whole_answer
from modelmux.oauth.refresher import Refresher
from modelmux.secrets import scrub
from modelmux.translate import effort, model_lists
from modelmux.translate.assembly import Assembly
from modelmux.translate.registry import PROTOCOLS

TIMEOUT = 30.0
# Words with which an upstream refuses a field it does not take ("Unsupported parameter:
# 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
# "Extra inputs are not permitted", "Unrecognized request argument supplied").
REFUSED = re.compile(r"unsupported|not supported|unrecognized|unknown|not permitted|extra inputs|not allowed"
                     r"|invalid|unexpected", re.IGNORECASE)  # fmt: skip
OTHER_FIELD = {"max_tokens": "max_completion_tokens", "max_completion_tokens": "max_tokens"}
PASSTHROUGH = ("nothing to probe: auth: passthrough forwards Claude Code's own requests to Anthropic unchanged, "
               "with your own login")  # fmt: skip


@dataclass
class Outcome:
    """One probe's answer: its status (None: no answer) and words (the upstream's, or why
    none came), what its own events show and the message Claude Code would get of it."""

    status: int | None
    words: str
    reading: Reading | None = None
    message: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.reading is not None and self.reading.error is None

    @property
    def answered(self) -> bool:
        """A success or a refusal; not a timeout, a rate limit or a server error."""
        return self.status is not None and self.status < 500 and self.status != 429

    def evidence(self, said: str = "", around: str = "") -> str:
        """The status and a short excerpt (with `around` in it); without an answer, why
        there was none."""
        if self.status is None:
            return excerpt(self.words)
        text = f"HTTP {self.status}: {said or self.words}" if said or self.words else f"HTTP {self.status}"
        return excerpt(text, around)


class DeepCheck:
    def __init__(self, target: probe.Target, client: httpx.AsyncClient, timeout: float = TIMEOUT) -> None:
        assert target.model is not None
        self.target, self.client, self.timeout = target, client, timeout
        self.provider, self.model = target.provider, target.model
        self.protocol = PROTOCOLS[self.provider.protocol]
        self.shape: Shape = self.provider.shape  # as learned so far: what later probes are sent with
        self.facts = Facts()
        self.report = blank(target)
        self._silent = 0  # requests in a row that got no answer
        self._refusals: dict[str, Outcome] = {}  # the first request's refusals, by the key that fixed them

    async def run(self) -> Report:
        listed = await self._model_list()
        first = await self._first()
        if first is not None:
            await self._output_limit(listed)
            think = await self._reasoning()
            await self._tools(think)
            await self._attachment("images", requests.image(), requests.COLOURS, f"its colour ({requests.COLOUR})")
            await self._attachment("documents", requests.document(), (requests.WORD.lower(),),
                                   f"its word ({requests.WORD})")  # fmt: skip
            self.report.provider_lines = provider_lines(self.provider, self.facts)
            self.report.model_lines = model_lines(effort.of(self.model)[0], self.facts)
        return self.report

    # -- the probes ---------------------------------------------------------------------

    async def _model_list(self) -> tuple[int | None, int | None]:
        """The context window and output limit the model list gives the model."""
        if not model_lists.asks(self.target.credential):
            return None, None
        url, headers = model_lists.request(self.provider, self.target.credential)
        self.report.sent += 1
        answer = await probe.send(self.client, self.provider, "GET", url, list(headers.items()), whole=True,
                                  timeout=self.timeout)  # fmt: skip
        if isinstance(answer, str) or answer.status >= 300:
            return None, None
        return model_lists.limits(answer.text, effort.of(self.model)[0])

    async def _first(self) -> Outcome | None:
        """The gateway's own streamed request. A Chat provider's refusal of the max-tokens
        field or of stream_options is retried without it, once each; any other failure
        ends the deep check (failed: the provider does not work as configured)."""
        outcome = await self._send(requests.plain())
        retried: set[str] = set()
        chat = requests.asks_chat_questions(self.provider)
        while chat and outcome.status == 400 and (fix := self._fix(outcome, retried)):
            retried.add(fix)
            outcome = await self._send(requests.plain())
        if not outcome.ok:
            self.report.failed, self.report.note = True, self._failure(outcome)
            return None
        assert outcome.reading is not None
        if not chat:
            self._found("streamed usage", "yes" if outcome.reading.usage else "no", outcome.evidence(_usage(outcome)))
            return outcome
        await self._chat_usage(outcome)
        await self._chat_field("max_tokens_field" in retried)
        return outcome

    def _fix(self, outcome: Outcome, retried: set[str]) -> str | None:
        """The shaping change a Chat provider's 400 asks for, applied; None: none does."""
        field_name = self.shape.max_tokens_field
        if "max_tokens_field" not in retried and _refuses(outcome.words, field_name):
            self.facts.max_tokens_field = OTHER_FIELD[field_name]
            self.shape = replace(self.shape, max_tokens_field=OTHER_FIELD[field_name])
            self._refusals["max_tokens_field"] = outcome
            return "max_tokens_field"
        if "drop_fields" not in retried and _refuses(outcome.words, "stream_options"):
            self.facts.stream_options_refused = True
            self.shape = replace(self.shape, drop_fields=self.shape.drop_fields | {"stream_options"})
            self._refusals["drop_fields"] = outcome
            return "drop_fields"
        return None

    async def _chat_usage(self, first: Outcome) -> None:
        """Whether usage comes with `stream_options.include_usage` (which the gateway sends),
        and without it."""
        assert first.reading is not None
        if self.facts.stream_options_refused:
            said = "yes, without it" if first.reading.usage else "no, not even without it"
            refusal = self._refusals["drop_fields"]
            self._found("streamed usage", f"stream_options refused; usage: {said}", refusal.evidence())
            return
        if not first.reading.usage:
            said = first.evidence(_usage(first))
            self._found("streamed usage", "no, not even with stream_options.include_usage", said)
            return
        bare = await self._send(requests.plain(), drop_fields=self.shape.drop_fields | {"stream_options"})
        if bare.ok:
            assert bare.reading is not None
            found = "yes, even without stream_options" if bare.reading.usage else \
                "yes, only with stream_options.include_usage (modelmux sends it)"
            self._found("streamed usage", found, bare.evidence(f"{_usage(bare)} without stream_options"))
        else:
            self._found("streamed usage", "yes, with stream_options.include_usage; without: not known",
                        bare.evidence(), bare.answered)  # fmt: skip

    async def _chat_field(self, switched: bool) -> None:
        """Which max-tokens field it takes: the other one is tried, unless the first
        request already switched to it."""
        sent = self.shape.max_tokens_field
        if switched:
            self._found("max-tokens field", f"{sent} ({OTHER_FIELD[sent]} refused)",
                        self._refusals["max_tokens_field"].evidence())  # fmt: skip
            return
        other = OTHER_FIELD[sent]
        outcome = await self._send(requests.plain(), max_tokens_field=other)
        if outcome.ok:
            self._found("max-tokens field", f"{sent}; {other} taken too", outcome.evidence(f"{other} taken"))
        elif outcome.answered and _refuses(outcome.words, other):
            self._found("max-tokens field", f"{sent} ({other} refused)", outcome.evidence())
        else:
            self._found("max-tokens field", f"{sent}; {other}: not known", outcome.evidence(), outcome.answered)

    async def _output_limit(self, listed: tuple[int | None, int | None]) -> None:
        """An absurd max_tokens, past any configured cap: the refusal names the limit."""
        outcome = await self._send(requests.plain(requests.ABSURD_TOKENS), max_tokens_limit=None)
        said = outcome.reading.error if outcome.reading and outcome.reading.error else outcome.words
        refused = outcome.answered and not outcome.ok
        output = limits.max_output(said, requests.ABSURD_TOKENS) if refused else None
        window = limits.context_window(said) if refused else None
        self.facts.max_output = self._limit("max output", output, listed[1], outcome, said)
        self.facts.context_window = self._limit("context window", window, listed[0], outcome, said)

    def _limit(self, name: str, found: int | None, listed: int | None, outcome: Outcome, said: str) -> int | None:
        """A limit as the refusal named it, else as the model list gives it."""
        if found is not None:
            # Its leading digits: Gemini names the limit plus one ("to 65537 (exclusive)").
            self._found(name, str(found), outcome.evidence(said, around=str(found)[:-1]))
            return found
        if listed is not None:
            self._found(name, str(listed), "its model list")
            return listed
        taken = f"max_tokens {requests.ABSURD_TOKENS} taken" if outcome.ok else said
        self._found(name, "not revealed", outcome.evidence(taken), outcome.answered)
        return None

    async def _reasoning(self) -> bool:
        """Claude Code's thinking request, as the gateway sends it; whether reasoning came."""
        outcome = await self._send(requests.thinking())
        if outcome.ok:
            assert outcome.reading is not None
            reading = outcome.reading
            self.facts.thinking = reading.reasoned
            found = ", ".join(reading.reasoning) or (f"hidden ({reading.reasoning_tokens} reasoning tokens, no text)"
                                                     if reading.reasoning_tokens else "none")  # fmt: skip
            counted = f"{reading.reasoning_tokens} reasoning tokens counted" if reading.reasoning_tokens else ""
            shown = repr(excerpt(reading.thought)) if reading.thought else counted
            self._found("reasoning", found, outcome.evidence(shown))
            return reading.reasoned
        if outcome.answered:
            self._reasoning_refused(outcome)
        else:
            self._found("reasoning", "not known", outcome.evidence(), answered=False)
        return False

    def _reasoning_refused(self, outcome: Outcome) -> None:
        words = outcome.words.lower()
        if "reasoning_summary" in self.protocol.shaping and "summar" in words:
            self.facts.summary_refused = True  # the model may reason; its summaries are what is refused
            self._found("reasoning", "summaries refused", outcome.evidence())
            return
        self.facts.thinking = False
        sent = self.protocol.effort_field
        self.facts.effort_refused = sent is not None and sent in words
        self._found("reasoning", f"{sent} refused" if self.facts.effort_refused else "refused", outcome.evidence())

    async def _tools(self, think: bool) -> None:
        body = requests.tools(think)
        outcome = await self._send(body)
        if not outcome.ok:
            for name in ("parallel tool calls", "tool-call ids", "tool results"):
                self._found(name, "refused" if outcome.answered else "not known", outcome.evidence(), outcome.answered)
            return
        assert outcome.reading is not None
        calls = outcome.reading.calls
        many = f"yes ({len(calls)} calls in one turn)" if len(calls) > 1 else "no (one call)" if calls else \
            "no call made"
        self._found("parallel tool calls", many, outcome.evidence(", ".join(c.name for c in calls) or outcome.words))
        self._found("tool-call ids", *readings.ids(calls))
        back = [b for b in (outcome.message or {}).get("content") or () if b.get("type") == "tool_use"]
        if not back:
            self._found("tool results", "not sent: no call to answer", outcome.evidence())
            return
        await self._results(body, outcome, think)

    async def _results(self, body: dict[str, Any], answer: Outcome, think: bool) -> None:
        """The next turn, with the calls' results; from a thinking Chat model, without its
        reasoning (the gateway's default): whether it wants it back."""
        assert answer.message is not None
        wants = think and "reasoning_history" in self.protocol.shaping
        outcome = await self._send(requests.results(body, answer.message), reasoning_history=False)
        name = "reasoning with tools" if wants else "tool results"
        if outcome.ok:
            self._found(name, "not needed back" if wants else "accepted", outcome.evidence("the next turn answered"))
        elif outcome.answered and wants and "reasoning" in outcome.words.lower():
            self.facts.reasoning_history = True
            self._found(name, "wanted back", outcome.evidence())
        else:
            self._found(name, "refused" if outcome.answered else "not known", outcome.evidence(), outcome.answered)

    async def _attachment(self, kind: str, body: dict[str, Any], words: tuple[str, ...], what: str) -> None:
        outcome = await self._send(body, **{kind: True})
        if outcome.ok:
            assert outcome.reading is not None
            seen = any(word in outcome.reading.text.lower() for word in words)
            setattr(self.facts, kind, True if seen else None)
            found = f"accepted, and the answer names {what}" if seen else \
                f"accepted, but the answer does not name {what}"
            self._found(kind, found, outcome.evidence(repr(excerpt(outcome.reading.text))))
        elif outcome.answered:
            setattr(self.facts, kind, False)
            self._found(kind, "refused", outcome.evidence())
        else:
            self._found(kind, "not known", outcome.evidence(), answered=False)

    # -- sending ------------------------------------------------------------------------

    async def _send(self, body: dict[str, Any], **changes: Any) -> Outcome:
        """`body` as the gateway would send it to the provider with the shape learned so
        far and `changes`; the answer read whole (they are small)."""
        if self._silent >= 2:
            return Outcome(None, "not sent: the two requests before it got no answer")
        provider = replace(self.provider, shape=replace(self.shape, **changes))
        body = {**body, "model": self.model}
        try:
            outgoing = prepare(probe.decision_for(provider, self.model), body, upstream_json(body), probe.PATH, "",
                               probe.CLIENT_HEADERS, self.target.credential)  # fmt: skip
        except GatewayError as e:
            return Outcome(None, f"not sent: {e.message}")
        self.report.sent += 1
        headers = outgoing.headers(list(probe.CLIENT_HEADERS.items()))
        try:
            answer = await asyncio.wait_for(
                probe.send(self.client, provider, "POST", outgoing.url, headers, outgoing.content, whole=True,
                           timeout=self.timeout), self.timeout)  # fmt: skip
        except TimeoutError:
            answer = f"no answer within {self.timeout:g} s"
        if isinstance(answer, str):
            self._silent += 1
            return Outcome(None, answer)
        self._silent = 0
        if answer.status >= 300:
            return Outcome(*probe.upstream_words(provider, answer.status, answer.text))
        reading = readings.read(self.protocol.name, answer.text)
        said = scrub(reading.error or reading.text, provider.secrets)
        return Outcome(answer.status, said, reading, client_message(outgoing, answer.text))

    def _found(self, capability: str, found: str, evidence: str, answered: bool = True) -> None:
        self.report.findings.append(Finding(capability, found, scrub(evidence, self.provider.secrets), answered))

    def _failure(self, outcome: Outcome) -> str:
        if outcome.status in (401, 403):
            return f"the key was refused: {outcome.evidence()}"
        if outcome.status == 404 or (outcome.status in (400, 422) and probe.MODEL_MISSING.search(outcome.words)):
            return f"model {self.model} not found: {outcome.evidence()}"
        return f"its first request, as the gateway sends it, did not work: {outcome.evidence()}"


def client_message(outgoing: Outgoing, text: str) -> dict[str, Any] | None:
    """The answer as Claude Code gets it through the gateway's translation: what the next
    turn sends back (tool_use ids, thinking signatures that carry reasoning state)."""
    data = text.encode()
    try:
        if not data.lstrip().startswith((b"data:", b"event:", b":")):  # a whole answer to a streamed request
            if outgoing.translation is None:  # an Anthropic-compatible vendor's message
                found = json.loads(data)
                return found if isinstance(found, dict) else None
            data = whole_answer(outgoing.translation, None, data)[0]
        elif (transform := stream_transform(outgoing.translation, None)) is not None:
            data = b"".join(transform.feed(data) + transform.close())
    except (ValueError, GatewayError):
        return None
    assembly = Assembly()
    assembly.feed(data)
    return assembly.message if assembly.error is None else None


def _refuses(words: str, name: str) -> bool:
    return name in words and REFUSED.search(words) is not None


def _usage(outcome: Outcome) -> str:
    return "usage reported" if outcome.reading is not None and outcome.reading.usage else "no usage in the stream"


def targets(config: Config, provider: str | None = None, model: str | None = None) -> list[probe.Target]:
    """What to probe: `provider` (every provider when None) with `model` (as sent to that
    provider), each with its first credential. A `model` without a `provider` goes where
    the gateway would route it. Raises ValueError naming a name that is not there."""
    if provider is not None and provider not in config.providers:
        raise ValueError(f"--provider '{provider}' is not a provider in {config.path.name}; known: "
                         f"{', '.join(config.providers)}")  # fmt: skip
    if model is not None and provider is None:
        name = config.resolve_alias(model)
        if (route := route_for(config.routes, name)) is None:
            raise ValueError(f"--model '{model}' matches no route in {config.path.name}; add --provider NAME to "
                             "send it to that provider as written")  # fmt: skip
        provider, model = route.provider, route.model or name
    chosen = [config.providers[provider]] if provider is not None else list(config.providers.values())
    return [probe.Target(p, next(iter(p.credentials), None), model or probe.cheapest_model(config, p), config.routes)
            for p in chosen]  # fmt: skip


async def check_all(items: list[probe.Target], timeout: float = TIMEOUT) -> list[Report]:
    async with httpx.AsyncClient() as client:
        refresher = Refresher(client)
        return list(await asyncio.gather(*(check(t, client, refresher, timeout) for t in items)))


async def check(target: probe.Target, client: httpx.AsyncClient, refresher: Refresher, timeout: float) -> Report:
    """The deep check of `target`, or why there is none (passthrough, no model, a login
    that needs renewing)."""
    provider, credential = target.provider, target.credential
    report = blank(target)
    if provider.passthrough:
        report.model, report.note = None, PASSTHROUGH
    elif target.model is None:
        report.checked = False
        report.note = (f"not probed: routes.yaml names no model for it; give --model NAME, or add one to "
                       f"providers.{provider.name}.models")  # fmt: skip
    elif credential is not None and (needs_login := await refresher.fresh(credential)):
        report.failed, report.note = True, scrub(needs_login, provider.secrets)
    else:
        report = await DeepCheck(target, client, timeout).run()
    return report


def blank(target: probe.Target) -> Report:
    """A report of `target` with nothing found yet."""
    provider = target.provider
    return Report(provider.name, provider.protocol, target.model, probe.label(target),
                  requests.plan(provider, target.credential))  # fmt: skip

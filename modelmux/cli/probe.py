"""`modelmux check`'s live part: what each provider and credential is asked, and what
its answer shows. A model that routes.yaml names gets one minimal request (one token
asked for), built by the gateway's own translation (exchange.prepare), so what is
tried is what the gateway would send. The provider's model list (model_lists) is
asked too, and is all there is to ask when no model is named (glob routes only).
Nothing here returns a secret: every upstream word is scrubbed of the provider's
credentials."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from modelmux.config.types import Config, Credential, ModelFacts, ModelPattern, Provider, Route
from modelmux.errors import gist
from modelmux.attempt.exchange import prepare, upstream_json
from modelmux.oauth.refresher import Refresher
from modelmux.routing import Decision
from modelmux.secrets import scrub
from modelmux.translate import effort, model_lists
from modelmux.translate.registry import PROTOCOLS

PATH = "/v1/messages"
CLIENT_HEADERS = {"anthropic-version": "2023-06-01", "content-type": "application/json"}
# A probe is one token: an upstream that has not answered its headers by then is as
# good as unreachable, whatever response_timeout a long answer is allowed.
RESPONSE_TIMEOUT = 30.0
# An upstream's words for "no such model" when it does not answer 404 (OpenAI's
# `model_not_found` code, "The model `x` does not exist", Gemini's "is not found").
MODEL_MISSING = re.compile(
    r"model_not_found|no such model|unknown model|model\W+\S+\W+(does not exist|is not found|not found)"
    r"|model (does not exist|not found)", re.IGNORECASE
)


@dataclass(frozen=True)
class Target:
    provider: Provider
    credential: Credential | None  # None: passthrough (the client's own token), or keyless
    model: str | None  # None: nothing in routes.yaml names a model this provider serves
    routes: tuple[Route, ...] = ()  # routes.yaml's: which listed model a client could reach it with


@dataclass
class Result:
    provider: str
    credential: str
    model: str | None  # the model of the one-token request; None: none was sent
    reachable: bool | None = None  # None: not probed
    auth_ok: bool | None = None  # None: not known (not reached, not checked, or no key of modelmux's)
    model_found: bool | None = None
    listed: int | None = None  # how many models the provider's model list names; None: no list answered
    latency_ms: int | None = None
    note: str = ""
    failed: bool = False
    checked: bool = True  # False: nothing answered that shows whether it works; the note says why


@dataclass(frozen=True)
class Answer:
    status: int
    text: str  # the body of an error or a model list; "" for a one-token success (maybe a stream)
    latency_ms: int


def targets(config: Config) -> list[Target]:
    """Each provider's credentials in order; a passthrough or keyless provider once, with
    no credential."""
    found = []
    for provider in config.providers.values():
        model = cheapest_model(config, provider)
        found += [Target(provider, c, model, config.routes) for c in provider.credentials] or [
            Target(provider, None, model, config.routes)
        ]
    return found


def cheapest_model(config: Config, provider: Provider) -> str | None:
    """The first of the provider's `models` (lists usually start with the small one),
    else the first model a route or a fallback sends it by name."""
    if provider.models:
        return provider.models[0]
    for route in config.routes:
        if route.provider == provider.name and (route.model or route.pattern.kind == "exact"):
            return route.model or route.pattern.text
        for fallback in route.fallback:
            if fallback.provider == provider.name and fallback.model:
                return fallback.model
    return None


def decision_for(provider: Provider, model: str) -> Decision:
    """The decision the gateway would make for `model` at this provider, with no route of
    routes.yaml in between (the model goes upstream as written)."""
    name, wanted = effort.of(model)
    route = Route(ModelPattern("exact", model), provider.name, None, "upstream", "modelmux check")
    return Decision(model, model, provider, name, route, wanted)


async def probe_all(items: list[Target], found: dict[str, Mapping[str, ModelFacts]] | None = None) -> list[Result]:
    async with httpx.AsyncClient() as client:
        refresher = Refresher(client)
        return list(await asyncio.gather(*(probe(t, client, refresher, found) for t in items)))


async def probe(target: Target, client: httpx.AsyncClient, refresher: Refresher,
                found: dict[str, Mapping[str, ModelFacts]] | None = None) -> Result:
    """Ask the model list (where it can tell anything), then send the one-token request
    when a model is named; what they answered fills the result. `found` gets what each
    list that answered reports of its models, by provider."""
    provider, credential = target.provider, target.credential
    result = Result(provider.name, label(target), None if provider.passthrough else target.model)
    if credential is not None and (needs_login := await refresher.fresh(credential)):
        result.auth_ok, result.failed = False, True
        result.note = scrub(needs_login, provider.secrets)
        return result
    listing: Answer | None = None
    if model_lists.asks(credential):
        url, headers = model_lists.request(provider, credential)
        answer = await send(client, provider, "GET", url, list(headers.items()), whole=True)
        if isinstance(answer, str):  # the one-token request would go the same way
            return unreachable(result, answer)
        listing = answer
        if found is not None and listing.status < 300 and (reported := model_lists.facts(listing.text)) is not None:
            found[provider.name] = reported
    if provider.passthrough:  # no token of ours to send: that it answers is all there is to know
        assert listing is not None
        result.reachable, result.latency_ms = True, listing.latency_ms
        result.note = f"reachable (HTTP {listing.status}); your own login is used, not checked"
    elif target.model is not None:
        await one_token(target, target.model, client, result)
        if listing is not None:
            compare(result, listing, target.model)
    elif listing is None:
        not_checked(result, f"a subscription login has no model list to ask, and routes.yaml names no model "
                            f"for it; add one to providers.{provider.name}.models")  # fmt: skip
    else:
        await from_list(target, listing, client, result)
    return result


def label(target: Target) -> str:
    if target.credential is not None:
        return target.credential.label
    return "(client's token)" if target.provider.passthrough else "(no key)"


async def send(client: httpx.AsyncClient, provider: Provider, method: str, url: str, headers: list[tuple[str, str]],
               content: bytes | None = None, whole: bool = False, timeout: float = RESPONSE_TIMEOUT) -> Answer | str:
    """The upstream's answer (its body read when `whole` or an error; a success may be a
    stream), or why there was none; `timeout`: seconds to wait for its headers."""
    limit = httpx.Timeout(min(provider.response_timeout, timeout), connect=provider.connect_timeout)
    started = time.monotonic()
    try:
        request = client.build_request(method, url, headers=headers, content=content, timeout=limit)
        response = await client.send(request, stream=True)
    except httpx.HTTPError as e:
        origin = urlsplit(url)
        detail = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        return scrub(f"no answer from {origin.scheme}://{origin.netloc} ({detail})", provider.secrets)
    latency_ms = round((time.monotonic() - started) * 1000)
    try:
        text = (await response.aread()).decode("utf-8", "replace") if whole or response.status_code >= 400 else ""
    except httpx.HTTPError:
        text = ""
    finally:
        await response.aclose()
    return Answer(response.status_code, text, latency_ms)


async def one_token(target: Target, model: str, client: httpx.AsyncClient, result: Result) -> None:
    provider, credential = target.provider, target.credential
    body = {"model": model, "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}
    outgoing = prepare(decision_for(provider, model), body, upstream_json(body), PATH, "", CLIENT_HEADERS, credential)
    headers = outgoing.headers(list(CLIENT_HEADERS.items()))
    answer = await send(client, provider, "POST", outgoing.url, headers, outgoing.content)
    if isinstance(answer, str):
        unreachable(result, answer)
    else:
        judge(result, provider, answer)


def judge(result: Result, provider: Provider, answer: Answer) -> None:
    """Fill `result` from the one-token request's answer."""
    result.reachable, result.latency_ms = True, answer.latency_ms
    status, words = upstream_words(provider, answer.status, answer.text)
    if status in (401, 403):
        refused(result, provider, status, words)
        return
    result.auth_ok = None if provider.keyless else True
    missing = status == 404 or (status in (400, 422) and MODEL_MISSING.search(words) is not None)
    # A 400 that is not about the model (max_tokens too small for a reasoning model,
    # say) still shows the model is there.
    result.model_found = False if missing else True if status < 500 and status != 429 else None
    result.failed = not result.model_found
    if status >= 400:
        result.note = f"HTTP {status}: {words}"


async def from_list(target: Target, listing: Answer, client: httpx.AsyncClient, result: Result) -> None:
    """Fill `result` from the model list alone (no model is named). Only a 2xx list
    shows the key works; a list that is not there (404 and the like) shows nothing."""
    provider = target.provider
    result.reachable, result.latency_ms = True, listing.latency_ms
    status, words = upstream_words(provider, listing.status, listing.text)
    fix = f"add a model to providers.{provider.name}.models to probe with"
    if status in (401, 403):
        refused(result, provider, status, words)
        return
    if status == 429 or status >= 500:
        result.failed, result.note = True, f"HTTP {status}: {words}"
        return
    listed = model_lists.names(listing.text) if status < 300 else None
    if listed is None:
        path = urlsplit(model_lists.bare(provider)[0]).path
        said = f"HTTP {status}: {words}" if status >= 300 else f"HTTP {status}, but not a model list; is base_url right?"
        not_checked(result, f"no model list at GET {path} ({said}), and routes.yaml names no model; {fix}")
        return
    result.listed = len(listed)
    if target.credential is not None and await open_list(client, provider):
        not_checked(result, f"its model list answers without a key too, so it shows nothing of the key; {fix}")
        return
    result.auth_ok = None if provider.keyless else True
    example = model_lists.routed_here(listed, target.routes, provider.name)
    # Only named here, not sent a one-token request: a list holds embedding, image and
    # audio models that the glob may match (OpenAI's `gpt-image-1`), and a chat request
    # to one of those would fail a provider that works. The list has shown the key works.
    result.note = f"e.g. {example} routes here" if example else "none of the listed models routes here by its name"


async def open_list(client: httpx.AsyncClient, provider: Provider) -> bool:
    """Whether the model list answers with no key at all (OpenRouter's is public), so
    that its answer to the key says nothing about the key."""
    url, headers = model_lists.bare(provider)
    answer = await send(client, provider, "GET", url, list(headers.items()))
    return isinstance(answer, Answer) and answer.status < 300


def compare(result: Result, listing: Answer, model: str) -> None:
    """With a model named, the list only adds what it says of that model: lists are often
    partial (aliases, deployments), so a model missing from one is a note, not a failure."""
    listed = model_lists.names(listing.text) if listing.status < 300 else None
    if listed is None:
        return
    result.listed = len(listed)
    if effort.of(model)[0] not in listed:
        result.note = "; ".join(n for n in (result.note, "not in its model list") if n)


def upstream_words(provider: Provider, status: int, text: str) -> tuple[int, str]:
    """The status and words of an answer, scrubbed. Gemini's error status says more than
    its HTTP status (an invalid key is a 400 there); read as exchange.upstream_failure reads it."""
    if status < 300:  # a model list is no error message
        return status, ""
    read_error = PROTOCOLS[provider.protocol].read_error
    if read_error is not None and status >= 400:
        error = read_error(status, scrub(text, provider.secrets))
        return error.status, error.message
    return status, scrub(gist(text), provider.secrets) if text else ""


def refused(result: Result, provider: Provider, status: int, words: str) -> None:
    result.failed, result.note = True, f"HTTP {status}: {words}"
    if provider.keyless:  # no key was sent: it wants one
        result.note += f"; it asks for a key: give providers.{provider.name} auth and credentials"
    else:
        result.auth_ok = False


def unreachable(result: Result, why: str) -> Result:
    result.reachable, result.failed, result.note = False, True, why
    return result


def not_checked(result: Result, why: str) -> None:
    result.checked, result.note = False, why

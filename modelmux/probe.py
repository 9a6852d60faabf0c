"""`modelmux check`'s live part: one minimal request (one token asked for) per provider
and credential, built by the gateway's own translation (exchange.prepare), so what is
tried is what the gateway would send. Nothing here returns a secret: every upstream
word is scrubbed of the provider's credentials."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass

import httpx

from modelmux import effort, gemini
from modelmux.config import Config, Credential, ModelPattern, Provider, Route
from modelmux.credentials import scrub
from modelmux.errors import gist
from modelmux.exchange import prepare, upstream_json
from modelmux.oauth.refresher import Refresher
from modelmux.routing import Decision
from modelmux.status_report import aligned

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
    credential: Credential | None  # None: passthrough, the client's own token
    model: str | None  # None: nothing in routes.yaml names a model this provider serves


@dataclass
class Result:
    provider: str
    credential: str
    model: str | None
    reachable: bool | None = None  # None: not probed
    auth_ok: bool | None = None  # None: not known (not reached, or the client's token)
    model_found: bool | None = None
    latency_ms: int | None = None
    note: str = ""
    failed: bool = False


def targets(config: Config) -> list[Target]:
    """Each provider's credentials in order; a passthrough provider once, with no credential."""
    found = []
    for provider in config.providers.values():
        model = cheapest_model(config, provider)
        found += [Target(provider, c, model) for c in provider.credentials] or [Target(provider, None, model)]
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


async def probe_all(items: list[Target]) -> list[Result]:
    async with httpx.AsyncClient() as client:
        refresher = Refresher(client)
        return list(await asyncio.gather(*(probe(t, client, refresher) for t in items)))


async def probe(target: Target, client: httpx.AsyncClient, refresher: Refresher) -> Result:
    provider, credential = target.provider, target.credential
    label = credential.label if credential is not None else "(none)" if provider.keyless else "(client's token)"
    result = Result(provider.name, label, target.model)
    if target.model is None:
        result.note = f"no model to probe with: add one to providers.{provider.name}.models"
        return result
    if credential is not None and (needs_login := await refresher.fresh(credential)):
        result.auth_ok, result.failed = False, True
        result.note = scrub(needs_login, provider.credentials)
        return result
    body = {"model": target.model, "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}
    raw = upstream_json(body)
    outgoing = prepare(decision_for(provider, target.model), body, raw, PATH, "", CLIENT_HEADERS, credential)
    timeout = httpx.Timeout(min(provider.response_timeout, RESPONSE_TIMEOUT), connect=provider.connect_timeout)
    started = time.monotonic()
    try:
        request = client.build_request("POST", outgoing.url, headers=outgoing.headers(list(CLIENT_HEADERS.items())),
                                       content=outgoing.content, timeout=timeout)
        response = await client.send(request, stream=True)
    except httpx.HTTPError as e:
        result.reachable, result.failed = False, True
        result.note = f"no answer from {provider.base_url} ({type(e).__name__})"
        return result
    result.latency_ms = round((time.monotonic() - started) * 1000)
    try:  # a success may be a stream: only an error's body is read
        text = "" if response.status_code < 400 else (await response.aread()).decode("utf-8", "replace")
    except httpx.HTTPError:
        text = ""
    finally:
        await response.aclose()
    judge(result, provider, provider.passthrough, response.status_code, text)
    return result


def judge(result: Result, provider: Provider, passthrough: bool, status: int, text: str) -> None:
    """Fill `result` from the upstream's answer. Gemini's error status says more than its
    HTTP status (an invalid key is a 400 there); read as exchange.upstream_failure reads it."""
    result.reachable = True
    words = scrub(gist(text), provider.credentials) if text else ""
    if provider.protocol == "gemini" and status >= 400:
        error = gemini.error_of(status, scrub(text, provider.credentials))
        status, words = error.status, error.message
    if passthrough:  # no token was sent: an answer is all this can show
        result.note = "client's token: not probed"
        return
    result.auth_ok = status not in (401, 403)
    if result.auth_ok:
        missing = status == 404 or (status in (400, 422) and MODEL_MISSING.search(words) is not None)
        # A 400 that is not about the model (max_tokens too small for a reasoning
        # model, say) still shows the model is there.
        result.model_found = False if missing else True if status < 500 and status != 429 else None
    result.failed = not (result.auth_ok and result.model_found)
    if status >= 400:
        result.note = f"HTTP {status}: {words}"


HEADER = ["provider", "credential", "model", "reachable", "auth ok", "latency", "model found", "note"]


def table(results: list[Result]) -> list[str]:
    rows = [HEADER] + [
        [r.provider, r.credential, r.model or "-", _yes(r.reachable), _yes(r.auth_ok),
         f"{r.latency_ms} ms" if r.latency_ms is not None else "-", _yes(r.model_found), r.note]
        for r in results
    ]  # fmt: skip
    return aligned(rows)


def _yes(value: bool | None) -> str:
    return "-" if value is None else "yes" if value else "no"

"""One attempt's request to an upstream, and how its answer becomes the client's.

Both ways of sending build on this: mitmproxy sending a flow itself (one possible
upstream), and the failover relay (several). Pure: no mitmproxy, no network.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode, urlsplit

from modelmux.config.types import Credential, Provider
from modelmux.errors import GatewayError, error_body, gist, is_error_envelope, upstream_error
from modelmux.translate import messages, model_paths, repeated
from modelmux.translate.anthropic_side import Context
from modelmux.headers import (
    CREDENTIAL_HEADERS, OWN_HEADER_PREFIX, PLACEHOLDER_TOKEN, USER_AGENT, client_tokens, vendor_betas,
)
from modelmux.config.model_facts import ROUTES_YAML
from modelmux.oauth.holder import TokenHolder
from modelmux.oauth.kinds import KINDS
from modelmux.translate.overflow import restated
from modelmux.routing import Decision
from modelmux.secrets import scrub
from modelmux.translate.passthrough import ModelRestorer, restore_model_json
from modelmux.translate.protocol import Translation
from modelmux.translate.registry import PROTOCOLS
from modelmux.translate.token_estimate import estimate_input_tokens
from modelmux.translate.translated_stream import TranslatedStream

COUNT_TOKENS = "/v1/messages/count_tokens"
# Bytes every thinking signature modelmux packed for a translated upstream contains
# (each protocol's packed_mark), or that a translated answer's unsigned thinking has:
# the thinking blocks packed_thinking picks go when the body holds one of them.
PACKED_SIGNATURES = (
    *dict.fromkeys(p.packed_mark for p in PROTOCOLS.values() if p.packed_mark), b'"signature":""', b'"signature": ""',
)


@dataclass
class Outgoing:
    """What to send: the URL, header edits on top of the client's headers, the body,
    and what the answer needs (translation notes, or the model name to restore)."""

    url: str
    content: bytes
    remove: set[str] = field(default_factory=set)  # lowercase header names to drop
    set: dict[str, str] = field(default_factory=dict)  # lowercase header name → value
    translation: dict[str, Any] | None = None  # {"protocol", "stream", "context"}: JSON-able
    restore: str | None = None  # model name an Anthropic answer gets back

    def headers(self, client: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """The client's headers with the edits applied, for a sender that builds its own
        request; framing headers are left to that sender."""
        dropped = self.remove | self.set.keys() | FRAMING | {"content-encoding"}  # the body is sent decoded
        return [(n, v) for n, v in client if n.lower() not in dropped] + list(self.set.items())


FRAMING = frozenset({"host", "content-length", "transfer-encoding", "connection", "keep-alive", "expect"})


def check_effort(decision: Decision) -> None:
    """A `NAME(EFFORT)` the provider does not take, as the client's 400 (routes.yaml's own
    are checked when it loads; a client may write any name)."""
    provider = decision.provider
    if decision.effort is not None and (
        problem := PROTOCOLS[provider.protocol].effort_problem(decision.upstream_model, decision.effort)
    ):
        raise GatewayError(
            400,
            f"model '{decision.requested}' asks provider '{provider.name}' for reasoning effort "
            f"{decision.effort}, but {problem}",
        )


def check_client_token(provider: Provider, client: Mapping[str, str]) -> None:
    """A passthrough provider gets the client's own token, which must not be the
    launcher's placeholder. `client`: headers by lowercase name."""
    if PLACEHOLDER_TOKEN in client_tokens(client).values():
        raise GatewayError(
            401,
            f"provider '{provider.name}' uses the client's own Anthropic credentials (auth: passthrough), "
            "but this request carries modelmux's placeholder token; log in to Claude Code (or set "
            "ANTHROPIC_API_KEY), or use a profile whose providers have credentials of their own",
        )


SENT = {"subscription": "your Claude subscription login", "api-key": "your Anthropic API key"}


def credential_mismatch(provider: Provider, route: str, sent: str | None, status: int, words: str) -> str | None:
    """Why a passthrough provider refused the client's own credential, when its kind is
    the reason, and what to configure. The upstream's words alone ("invalid api key")
    do not say that it was the user's Anthropic login modelmux forwarded. `sent`:
    headers.client_credential of the request; `route`: where the route was written."""
    if not provider.passthrough or status not in (401, 403) or sent not in SENT:
        return None
    said = (f"routes.yaml's {route} sends {SENT[sent]} to provider '{provider.name}' ({provider.base_url}), "
            f"which answered HTTP {status}: {words.rstrip('.')}")
    own_key = "replace its `auth: passthrough` with `credentials:` holding a `key:` in routes.yaml"
    if not is_anthropic(provider.base_url):
        return f"{said}. Only Anthropic takes Anthropic credentials: give '{provider.name}' a key of its own ({own_key})"
    if "oauth" not in words.lower():
        return None  # an expired or revoked login: Claude Code's own answer to a 401 fits
    if sent == "subscription":
        return (f"{said}. It needs an API key: run Claude Code with ANTHROPIC_API_KEY (logged out), "
                f"or {own_key}")
    return (f"{said}. It needs a Claude subscription login: unset ANTHROPIC_API_KEY and log in to Claude Code "
            f"(/login), or give '{provider.name}' a login of its own (`modelmux login claude --label NAME "
            f"--provider {provider.name}`)")


def is_anthropic(url: str) -> bool:
    """Whether `url` is Anthropic's own API, not a vendor's Anthropic-compatible one."""
    host = urlsplit(url).hostname or ""
    return host == "anthropic.com" or host.endswith(".anthropic.com")


def keyless_refusal(provider: Provider, status: int, words: str) -> str | None:
    """Why a provider with `auth: none` refused a request, and what to configure: a
    server that asks for a key (vLLM started with --api-key, LM Studio with
    authentication on) was sent none, which its own words may not say."""
    if not provider.keyless or status not in (401, 403):
        return None
    return (f"provider '{provider.name}' ({provider.base_url}) answered HTTP {status}: {words.rstrip('.')}. "
            "routes.yaml sends it no credential (auth: none); if it needs a key, replace `auth: none` with "
            f"`credentials:` holding a `key:` (sent as '{PROTOCOLS[provider.protocol].auth}')")


def prepare(
    decision: Decision, body: dict[str, Any], raw: bytes, path: str, query: str,
    client: Mapping[str, str], credential: Credential | None, model_at: tuple[int, int] | None = None,
) -> Outgoing:
    """The request for `decision`'s provider. `raw` is the client's body as sent, `path`
    its path without the query, `client` its headers by lowercase name, `model_at` where
    `raw` has the model's value (validation.parse_placed)."""
    check_effort(decision)
    provider = decision.provider
    remove = {name for name in client if name.startswith(OWN_HEADER_PREFIX)}
    set_headers: dict[str, str] = {}
    if provider.passthrough:
        check_client_token(provider, client)
    else:
        # The client's tokens (its Anthropic login, the launcher's placeholder, a key meant
        # for another service) are never this upstream's: stripped, whether a credential
        # takes their place or, with `auth: none`, nothing does.
        remove.update(name for name in client if name in CREDENTIAL_HEADERS)
        if not provider.keyless:
            assert credential is not None and provider.auth is not None
            # An oauth credential is sent as its kind says (_subscription), not as provider.auth.
            if credential.oauth is None:
                set_headers[provider.auth.header.lower()] = provider.auth.value(credential)
    oauth = credential.oauth if credential is not None else None
    base_url = provider.base_url
    if oauth is not None:
        base_url = oauth.token.base_url or KINDS[oauth.kind].base_url or base_url
    if not is_anthropic_itself(provider, base_url, oauth):
        _for_third_party(provider.protocol, client, remove, set_headers)
    set_headers.update({name.lower(): value for name, value in provider.headers.items()})
    if oauth is not None:
        _subscription(oauth, client, set_headers)
    translation = PROTOCOLS[provider.protocol].translation
    if translation is None:
        cap = output_cap(decision, written_only=is_anthropic_itself(provider, base_url, oauth))
        return _anthropic(decision, base_url, body, raw, path, query, remove, set_headers, cap, model_at)
    return _translated(decision, translation, base_url, body, remove, set_headers, credential)


def output_cap(decision: Decision, written_only: bool = False) -> int | None:
    """The most output tokens a request to `decision`'s model may ask for: its
    `max_output` and the provider's `max_tokens_limit`, the smaller when both are set.
    Claude Code asks for 32000, and a model that gives fewer answers 400. `written_only`:
    only a max_output routes.yaml wrote counts (Anthropic itself knows its models' limits
    better than a list another endpoint reported)."""
    facts = decision.model_facts
    model = facts.max_output if not written_only or facts.sources.get("max_output") == ROUTES_YAML else None
    limits = [limit for limit in (model, decision.provider.shape.max_tokens_limit) if limit]
    return min(limits) if limits else None


def capped(body: dict[str, Any], cap: int | None) -> dict[str, Any]:
    """An Anthropic request whose max_tokens is at most `cap` (`body` itself when it is),
    with a thinking budget kept below it: Anthropic's API requires budget_tokens <
    max_tokens."""
    wanted = body.get("max_tokens")
    if cap is None or not isinstance(wanted, int) or wanted <= cap:
        return body
    sent = {**body, "max_tokens": cap}
    thinking = body.get("thinking")
    budget = thinking.get("budget_tokens") if isinstance(thinking, dict) else None
    if isinstance(budget, int) and budget >= cap:
        sent["thinking"] = {**thinking, "budget_tokens": cap - 1}
    return sent


def is_anthropic_itself(provider: Provider, base_url: str, oauth: TokenHolder | None) -> bool:
    """Whether a request goes to Anthropic itself, which gets the client's headers as sent:
    a passthrough provider (the client's own login), a Claude login modelmux holds
    (Anthropic takes a subscription token only from Claude Code as it is), or Anthropic's
    API with a key. Anything else is a third party (Protocol.forwarded)."""
    if provider.passthrough or is_anthropic(base_url):
        return True
    return oauth is not None and KINDS[oauth.kind].protocol == "anthropic"


def _for_third_party(protocol: str, client: Mapping[str, str], remove: set[str], set_headers: dict[str, str]) -> None:
    """Only what `protocol` needs of the client's headers (its `forwarded`), and
    modelmux's own user agent; the provider's `headers:` come after, so may replace it."""
    kept = PROTOCOLS[protocol].forwarded
    remove.update(name for name in client if name not in kept and name not in FRAMING)
    set_headers.setdefault("user-agent", USER_AGENT)
    if "anthropic-beta" in kept and "anthropic-beta" in client:
        if betas := vendor_betas(client["anthropic-beta"]):
            set_headers["anthropic-beta"] = betas
        else:
            remove.add("anthropic-beta")


def auth_header(provider: Provider, credential: Credential | None) -> str | None:
    """The header a credential goes in (lowercase); None on passthrough and with `auth: none`."""
    if credential is not None and credential.oauth is not None:
        return KINDS[credential.oauth.kind].auth_header
    return provider.auth.header.lower() if provider.auth else None


def _subscription(oauth: TokenHolder, client: Mapping[str, str], set_headers: dict[str, str]) -> None:
    """An oauth credential's headers, as its kind requires (oauth/kinds.py)."""
    token, kind = oauth.token, KINDS[oauth.kind]
    set_headers.update(kind.request_headers(token.access_token, token.account_id, token.project_id))
    if kind.beta:
        betas = [b.strip() for b in client.get("anthropic-beta", "").split(",") if b.strip()]
        set_headers["anthropic-beta"] = ",".join([*betas, *([kind.beta] if kind.beta not in betas else [])])


def _anthropic(
    decision: Decision, base_url: str, body: dict[str, Any], raw: bytes, path: str, query: str,
    remove: set[str], set_headers: dict[str, str], cap: int | None = None, model_at: tuple[int, int] | None = None,
) -> Outgoing:
    content = raw
    sent = capped(body, cap)
    # The parsed blocks first: most requests have none to drop, and each byte test scans
    # the whole body (30 µs or more per 80 KB).
    kept = messages.without_blocks(sent, packed_thinking)
    if kept is not sent and any(p in raw for p in PACKED_SIGNATURES):
        sent = kept
    if not decision.provider.passthrough and "output_config" in sent and not is_anthropic(base_url):
        sent = messages.without_idle_effort(sent)  # a vendor's endpoint, not Anthropic's
    if decision.rewrites_model or sent is not body:
        spliced = with_model(raw, model_at, decision.upstream_model) if sent is body else None
        content = spliced or upstream_json({**sent, "model": decision.upstream_model})
    restore = decision.requested if decision.restores_model else None
    if restore:
        set_headers["accept-encoding"] = "identity"  # the answer gets rewritten: plain bytes, not gzip
    url = base_url + path + (f"?{query}" if query else "")
    return Outgoing(url, content, remove, set_headers, restore=restore)


def packed_thinking(block: Any) -> bool:
    """A thinking block Anthropic would reject: signed by modelmux for a translated
    upstream (Gemini's, OpenAI's reasoning), or unsigned (a translated answer's)."""
    if not isinstance(block, dict) or block.get("type") != "thinking":
        return False
    signature = block.get("signature")
    return not signature or any(p.packs(signature) for p in PROTOCOLS.values() if p.packs)


def _translated(decision: Decision, translation: Translation, base_url: str, body: dict[str, Any],
                remove: set[str], set_headers: dict[str, str], credential: Credential | None) -> Outgoing:
    provider, model = decision.provider, decision.upstream_model
    shape = provider.shape
    if (cap := output_cap(decision)) != shape.max_tokens_limit:
        shape = replace(shape, max_tokens_limit=cap)  # the translators cap max_tokens at it
    shown = decision.requested if decision.route.response_model == "requested" else model
    in_path = _path_segment(decision) if model_paths.in_path(provider) else model
    upstream = translation.request(body, shape, model, decision.effort)
    context = translation.context(body, shown, model)
    endpoint = translation.endpoint(shape, in_path, bool(body.get("stream")))
    envelope = False
    if credential is not None and credential.oauth is not None and (
        (wrap := KINDS[credential.oauth.kind].code_assist) is not None
    ):
        upstream = {"model": model, "project": credential.oauth.token.project_id, **wrap, "request": upstream}
        endpoint = "/v1internal:" + ("streamGenerateContent?alt=sse" if body.get("stream") else "generateContent")
        envelope = True
    set_headers.update({"content-type": "application/json", "accept-encoding": "identity"})
    notes = {"protocol": provider.protocol, "stream": bool(body.get("stream")), "context": context.to_dict()}
    if envelope:
        notes["envelope"] = True  # the answer comes back wrapped as {"response": ...}
    if credential is not None and credential.oauth is not None and credential.oauth.kind == "codex":
        # The Codex backend takes only streamed, unstored requests without an output
        # limit, with instructions; a whole answer is put together from the stream.
        upstream.pop("max_output_tokens", None)
        upstream.update(stream=True, store=False, instructions=upstream.get("instructions", ""))
        notes["collect"] = not body.get("stream")
    url = upstream_url(base_url, endpoint, shape.query)
    return Outgoing(url, upstream_json(upstream), remove, set_headers, translation=notes)


def _path_segment(decision: Decision) -> str:
    """The upstream model as its provider's URL path takes it; a name that cannot go
    there is the client's 400 (a configured one is a config error: model_paths.py)."""
    model = decision.upstream_model
    try:
        return model_paths.segment(model)
    except ValueError as e:
        sent = "" if model == decision.requested else f" is sent as '{model}', which"
        raise GatewayError(400, f"model: '{decision.requested}'{sent} goes into provider "
                                f"'{decision.provider.name}''s URL path, but {e}") from None


def upstream_url(base_url: str, endpoint: str, query: Mapping[str, str]) -> str:
    """base_url's path, then the endpoint (which may carry a query of its own, as
    Gemini's `?alt=sse`), then the provider's configured query parameters."""
    base = urlsplit(base_url)
    path, _, own = endpoint.partition("?")
    params = "&".join(p for p in (own, urlencode(dict(query))) if p)
    return f"{base.scheme}://{base.netloc}{base.path}{path}" + (f"?{params}" if params else "")


def estimate(translation: dict[str, Any], body: dict[str, Any]) -> None:
    """A stream's message_start shows modelmux's input-token estimate (whole answers carry
    the upstream's count). Callers run it once the request is on its way."""
    translation["context"]["input_tokens"] = estimate_input_tokens(body)


def stream_transform(
    translation: dict[str, Any] | None, restore: str | None, secrets: Iterable[Credential] = ()
) -> ModelRestorer | TranslatedStream | None:
    """What turns the upstream's event stream into the client's (see Outgoing's fields);
    None: bytes pass as they are. `secrets`: the provider's credentials, kept out of the
    errors a translator writes (they quote the upstream)."""
    if translation is None:
        return ModelRestorer(restore) if restore else None
    translate = _translation(translation)
    if translation.get("envelope"):
        stream: TranslatedStream = translate.stream(context_of(translation), envelope=True)
    else:
        stream = translate.stream(context_of(translation))
    stream.secrets = tuple(secrets)
    return stream


def whole_answer(translation: dict[str, Any] | None, restore: str | None, body: bytes) -> tuple[bytes, str]:
    """A successful whole (non-streamed) answer as the client's body and content type.
    Raises ValueError when a translated answer is not JSON, GatewayError when it says
    the upstream failed after all (a Responses `status: failed`)."""
    if translation is None:
        restored = restore_model_json(body, restore) if restore else None
        return restored or body, "application/json"
    parsed, context = json.loads(body), context_of(translation)
    if not isinstance(parsed, dict):
        raise ValueError("not a JSON object")
    if translation.get("envelope") and isinstance(parsed.get("response"), dict):
        parsed = parsed["response"]
    message = _translation(translation).answer(parsed, context)
    if translation["stream"]:  # the client asked for a stream; this upstream ignored that
        return messages.as_events(message), "text/event-stream"
    return json.dumps(message, ensure_ascii=False).encode(), "application/json"


def failed_answer(provider: str, error: GatewayError, secrets: Iterable[Credential] = ()) -> GatewayError:
    """`error`, which whole_answer raised, saying which provider it came from, in
    Anthropic's words when it is a context overflow, and without the provider's keys
    (`secrets`), which the upstream's words may quote."""
    message = scrub(f"provider '{provider}' answered: {error.message}", secrets)
    return restated(GatewayError(error.status, message, error.error_type, error.headers, error.code))


def context_of(translation: dict[str, Any]) -> Context:
    return _translation(translation).context_type(**translation["context"])


def _translation(notes: dict[str, Any]) -> Translation:
    """The Translation of the protocol a request's translation notes name."""
    translation = PROTOCOLS[notes["protocol"]].translation
    assert translation is not None
    return translation


def upstream_failure(
    provider: Provider, status: int, reason: str, text: str, route: str = "", sent: str | None = None,
) -> tuple[int, bytes, dict[str, str]]:
    """An upstream's error answer as the client gets it: status, body and headers to add,
    with keys it echoed redacted. Gemini's status name says more than its HTTP status
    (an invalid key is a 400 there, a 401 here; RESOURCE_EXHAUSTED names its retry
    delay), so its errors are read (gemini/errors.py); others keep their status. An
    Anthropic envelope is already the client's error (the failover relay's answer),
    unless the client's own credential was the wrong kind (credential_mismatch) or a
    provider with `auth: none` wants one (keyless_refusal). A context overflow is said
    in Anthropic's words, which Claude Code acts on (overflow.py)."""
    words = gist(scrub(text, provider.secrets))
    if mismatch := credential_mismatch(provider, route, sent, status, words) or keyless_refusal(provider, status, words):
        return status, error_body(status, mismatch), {}
    read_error = PROTOCOLS[provider.protocol].read_error
    if read_error is None or is_error_envelope(text.encode()):
        body = upstream_error(provider.name, status, reason, text, provider.secrets)
        if provider.passthrough or is_anthropic(provider.base_url):
            return status, body, {}  # Anthropic's own words already
        said = json.loads(body)["error"]
        overflow = restated(GatewayError(status, said["message"], said["type"], code=error_code(text)))
        return (status, body, {}) if overflow.message == said["message"] else (overflow.status, overflow.body(), {})
    error = read_error(status, scrub(text, provider.secrets))
    message = f"provider '{provider.name}' answered HTTP {status}: {error.message}"
    error = restated(GatewayError(error.status, message, error.error_type, error.headers))
    return error.status, error.body(), error.headers


def error_code(text: str) -> str | None:
    """An OpenAI-style error body's `code` (`context_length_exceeded`, ...), if it has one."""
    try:
        error = json.loads(text).get("error")
    except (ValueError, AttributeError):
        return None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


_SURROGATE = re.compile(rb"\xed[\xa0-\xbf]")  # UTF-8 of U+D800..DFFF, which json.loads lets through


def with_model(raw: bytes, model_at: tuple[int, int] | None, model: str) -> bytes | None:
    """The client's body with its model's value (at `model_at`: validation.parse_placed)
    replaced by `model`: about 5 µs for Claude Code's 80 KB request, where writing it
    again takes 300. None when the value's place is not known, or the body holds encoded
    surrogates, which json.dumps would send as \\u escapes and an upstream may refuse as bytes."""
    if model_at is None or (b"\xed" in raw and _SURROGATE.search(raw)):
        return None
    start, end = model_at
    return raw[:start] + json.dumps(model).encode() + raw[end:]


# Without check_circular: a body is JSON read or built anew, never a cycle (one would
# end in RecursionError instead of ValueError), and keeping every list and dict's id to
# look for one cost 12% of writing Claude Code's 80 KB request (about 30 µs).
_UPSTREAM_JSON = json.JSONEncoder(separators=(",", ":"), check_circular=False)


def upstream_json(body: Any) -> bytes:
    """A request body for an upstream, compact. ASCII-only output (non-ASCII as \\u escapes,
    which every JSON parser reads) takes json's C fast path: about 0.15 ms less per
    80 KB Claude Code request than ensure_ascii=False. A top-level value whose JSON is
    already written (repeated.written: the tools, a conversation's earlier turns) is
    put in as it is, where a placeholder no client can guess stood."""
    if not isinstance(body, dict):
        return _UPSTREAM_JSON.encode(body).encode()
    known = {name: text for name, value in body.items() if (text := repeated.written(value)) is not None}
    if not known:
        return _UPSTREAM_JSON.encode(body).encode()
    rest = _UPSTREAM_JSON.encode({name: _PLACEHOLDER + name if name in known else value for name, value in body.items()})
    parts = []
    for name, written in known.items():  # in the body's order, as the placeholders are in the text
        before, _, rest = rest.partition(_UPSTREAM_JSON.encode(_PLACEHOLDER + name))
        parts += (before, written)
    parts.append(rest)
    return "".join(parts).encode()  # one copy of the 80 KB, not one per value put in


_PLACEHOLDER = f"\x00modelmux-{secrets.token_hex(16)}:"  # new in each process

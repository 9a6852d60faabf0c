"""What a protocol is to modelmux: the facts and functions that differ between the APIs
it sends requests to. Each protocol's package exports one `Protocol` (openai_chat/,
openai_responses/, gemini/, and passthrough.py for Anthropic's own); registry.py
collects them by name. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from modelmux.config.types import Shape
from modelmux.errors import GatewayError
from modelmux.translate.anthropic_side import Context
from modelmux.translate.effort import Effort
from modelmux.translate.translated_stream import TranslatedStream

Body = dict[str, Any]
SHAPING = frozenset(Shape.__dataclass_fields__)  # every shaping key a provider may have in routes.yaml


@dataclass(frozen=True)
class Translation:
    """How a request becomes the protocol's own, and its answer Anthropic's."""

    # (the client's body, the provider's shape, the upstream model, the route's effort) → the body sent
    request: Callable[[Body, Shape, str, Effort | None], Body]
    # (shape, the upstream model as a path segment, streamed) → the path below base_url
    endpoint: Callable[[Shape, str, bool], str]
    # (the client's body, the model name the client sees, the upstream model) → what the answer needs
    context: Callable[[Body, str, str], Context]
    context_type: type[Context]  # a context back from its to_dict(), as the flow's notes keep it
    answer: Callable[[Body, Any], Body]  # a whole answer (parsed JSON, its context) → the Anthropic message
    stream: Callable[..., TranslatedStream]  # (context) → the transform of its event stream into Anthropic's


@dataclass(frozen=True)
class Protocol:
    name: str  # routes.yaml's `protocol:`
    auth: str  # how a credential is sent where routes.yaml writes no `auth:`
    # The client's headers a third-party upstream gets (anything but Anthropic itself, see
    # headers.py); modelmux sets the credential, its own user agent and the provider's
    # `headers:`. A translated upstream gets a body modelmux wrote, described by the
    # headers modelmux sets for it (content-type, accept-encoding: identity).
    forwarded: frozenset[str]
    model_list: str  # the model list's path below base_url (model_lists.py)
    # Why `model` cannot take a route's `NAME(EFFORT)`; None when it can (or nothing is
    # known against it).
    effort_problem: Callable[[str, Effort], str | None]
    translation: Translation | None = None  # None: the request goes as the client wrote it
    shaping: frozenset[str] = frozenset()  # the shaping keys routes.yaml may give its providers
    shape: Shape = field(default_factory=Shape)  # its providers' shaping where routes.yaml says nothing
    model_list_headers: Mapping[str, str] = field(default_factory=dict)
    model_in_path: bool = False  # the model always goes into the URL path (else only an endpoint's {model})
    # The request field an effort is sent in, as a refusal names it, where routes.yaml's
    # `reasoning_effort: false` can leave it out (check --deep proposes that).
    effort_field: str | None = None
    # Its error answers read for what they say beyond the HTTP status, as the client's error.
    read_error: Callable[[int, str], GatewayError] | None = None
    # Whether a thinking block's signature is state its translation packed there, which
    # Anthropic would reject; and bytes every such signature shows in a request body.
    packs: Callable[[Any], bool] | None = None
    packed_mark: bytes | None = None

    @property
    def translated(self) -> bool:
        return self.translation is not None

"""Every protocol modelmux sends requests in, by the name routes.yaml's `protocol:` gives
it: one `Protocol` each (protocol.py), exported by the package that translates it
(passthrough.py for Anthropic's own). What differs between protocols is looked up here,
so a new one is its package and one more entry. Pure.
"""

from __future__ import annotations

from modelmux.translate import gemini, openai_chat, openai_responses, passthrough
from modelmux.translate.protocol import Protocol

# In this order wherever routes.yaml's protocols are listed (a config error's "applies
# only to protocol ...").
PROTOCOLS: dict[str, Protocol] = {
    p.name: p for p in (passthrough.PROTOCOL, openai_chat.PROTOCOL, openai_responses.PROTOCOL, gemini.PROTOCOL)
}

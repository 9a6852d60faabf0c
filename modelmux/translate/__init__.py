"""Anthropic's Messages API to each upstream protocol and back. One package per protocol
pair (`openai_chat`, `openai_responses`, `gemini`) owns both directions, `passthrough`
is Anthropic's own, and `registry` has one `Protocol` (`protocol`) per routes.yaml
name. What they share lives once beside them: the Anthropic side (`anthropic_side`,
`stream_writer`, `translated_stream`, `messages`, `assembly`), what OpenAI's two APIs
share (`openai_side`), SSE framing (`sse`), tool names, thought signatures, efforts,
media sizes and the token estimate; and the request's checks at the edge
(`validation`, `model_paths`), model lists and the meter that reads answers as they
pass. Pure: fed data, they return data; no mitmproxy, no network. Nothing is
re-exported here: an import names its module."""

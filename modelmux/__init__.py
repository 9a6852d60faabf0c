"""modelmux: a local gateway that lets Claude Code use any LLM provider."""

__version__ = "0.1.0"

"""Requests as Claude Code sends them, for the translation tests of every protocol."""

from __future__ import annotations

import hashlib
from typing import Any

LONG_TOOL = "mcp__plugin_superpowers_superpowers-chrome__use_browser_with_a_really_long_name"
SHORT_TOOL = LONG_TOOL[:55] + "_" + hashlib.sha256(LONG_TOOL.encode()).hexdigest()[:8]


def claude_code_turn(signature: str = "sig") -> dict[str, Any]:
    """A turn with everything: the billing line, cache_control, a server tool, thinking
    (signed with `signature`), parallel calls, one with a long MCP name and an id
    modelmux encoded, their results (one an error), a mid-conversation system message."""
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 32000,
        "stream": True,
        "stop_sequences": ["END"],
        "temperature": 1,
        "top_k": 5,
        "metadata": {"user_id": "user_" + "a" * 80},
        "thinking": {"type": "adaptive"},
        "output_config": {"effort": "high"},
        "context_management": {"edits": []},
        "system": [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197.fbe; cc_entrypoint=sdk-cli;"},
            {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Be brief."},
        ],
        "tools": [
            {"name": "Bash", "description": "Run a command", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}},
             "cache_control": {"type": "ephemeral"}},
            {"name": LONG_TOOL, "input_schema": {"type": "object"}},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
        ],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "<system-reminder>ctx</system-reminder>"},
                                         {"type": "text", "text": ""},
                                         {"type": "text", "text": "list files", "cache_control": {"type": "ephemeral"}}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "I should run ls", "signature": signature},
                {"type": "text", "text": "Running ls."},
                {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}},
                {"type": "tool_use", "id": "mmx_ZnVuY3Rpb25zLkJhc2g6MQ", "name": LONG_TOOL, "input": {}},
            ]},
            {"role": "user", "content": [
                {"type": "text", "text": "here you go"},
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "a.py\nb.py"},
                {"type": "tool_result", "tool_use_id": "mmx_ZnVuY3Rpb25zLkJhc2g6MQ", "is_error": True,
                 "content": [{"type": "text", "text": "browser crashed"}]},
            ]},
            {"role": "system", "content": "The user changed directory."},
            {"role": "user", "content": "thanks"},
        ],
    }

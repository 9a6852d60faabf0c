"""JSON Schema errors → one line each, naming the key path and what to write instead."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import jsonschema

# What to write, by the last key of the failing path (jsonschema's own wording for
# `oneOf` and `pattern` failures says nothing a user can act on).
HINTS = {
    "base_url": "an http(s) URL without query string, e.g. https://api.example.com/anthropic",
    "match": "a model name, a glob such as 'claude-*haiku*', or one of {exact: NAME}, {glob: PATTERN}, {regex: EXPR}",
    "default": "null (unmatched models get 404) or {provider: NAME} with an optional model",
    "label": "letters, digits, '_', '.' or '-', starting with a letter or digit",
    "port": "a port number from 1 to 65535",
    "context_window": "the tokens the model holds, a whole number above 0 such as 128000",
    "max_output": "the most output tokens one answer may have, a whole number above 0 such as 8192",
    "backend": "file (this gateway's own state file) or redis (shared, with url: \"${MODELMUX_REDIS_URL}\")",
    "prefix": "letters, digits, '_', '.' or '-', starting with a letter or digit, e.g. modelmux-team",
    "lease_seconds": "seconds from 1 to 3600, e.g. 15",
}
TYPE_NAMES = {
    "object": "a mapping (key: value lines)",
    "array": "a list",
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "null": "null",
    "boolean": "true or false",
}


# The keys whose values an error may quote: names, choices and numbers. Any other value
# may be a secret written into routes.yaml directly (a key, an auth header, a URL with a
# token in it, a header's value), and an error reaches the log and `modelmux status`: it
# names the key and the kind of problem instead. Nothing under `headers` or `query` is
# quoted, whatever its name.
QUOTABLE = frozenset({
    "protocol", "strategy", "cooldown_scope", "response_model", "reasoning_summary", "reasoning_effort",
    "reasoning_history", "affinity", "images", "documents", "thinking", "intercept", "match", "exact", "glob",
    "regex", "provider", "model", "models", "fallback", "default", "label", "profile", "profiles", "providers",
    "tool", "slots", "opus", "sonnet", "haiku", "fable", "subagent", "aliases", "endpoint", "max_tokens_field",
    "drop_fields", "host", "port", "max_attempts", "connect_timeout", "response_timeout", "max_wait", "priority",
    "weight", "max_concurrent", "max_tokens_limit", "prompt_tokens_above", "seconds", "name", "context_window",
    "max_output", "efforts", "description", "backend", "prefix", "lease_seconds",
})  # fmt: skip
UNQUOTED_UNDER = frozenset({"headers", "query"})
# A rule broken, in words, for the values that are not quoted.
RULES = {
    "minLength": "must not be empty",
    "minItems": "needs at least {} item(s)",
    "minProperties": "needs at least {} key(s)",
    "maxProperties": "takes at most {} key(s)",
    "minimum": "must be at least {}",
    "exclusiveMinimum": "must be more than {}",
    "maximum": "must be at most {}",
    "pattern": "does not have the form this key takes",
    "oneOf": "is none of the forms this key takes",
}


def quotable(path: Iterable[Any]) -> bool:
    """Whether the value at `path` may appear in an error message (QUOTABLE)."""
    names = [part for part in path if isinstance(part, str)]
    return bool(names) and names[-1] in QUOTABLE and not UNQUOTED_UNDER & set(names)


def shown(path: Iterable[Any], value: Any) -> str:
    """`value` as an error may show it: quoted where that is safe, else "its value"."""
    return repr(value) if quotable(path) else "its value"


def kind_of(path: Iterable[Any], value: Any) -> str:
    """What a value of the wrong type is: itself where it may be quoted, else its type."""
    if quotable(path):
        return repr(value)
    if isinstance(value, bool):
        return "true or false"
    names = {str: "string", int: "integer", float: "number", list: "array", dict: "object", type(None): "null"}
    return TYPE_NAMES.get(names.get(type(value), ""), "a value of another type")


def key_path(parts: Iterable[Any]) -> str:
    """deque(['routes', 2, 'provider']) → 'routes[2].provider'."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def describe(error: jsonschema.ValidationError) -> str:
    path = list(error.absolute_path)
    where = key_path(path)
    last = next((p for p in reversed(path) if isinstance(p, str)), "")
    hint = HINTS.get(last)
    match error.validator:
        case "additionalProperties":
            known = sorted((error.schema.get("properties") or {}).keys())
            extra = sorted(set(error.instance) - set(known)) if isinstance(error.instance, dict) else []
            names = ", ".join(f"'{k}'" for k in extra)
            tail = f"; known keys: {', '.join(known)}" if known else ""
            return f"{where}: unknown key {names}{tail}"
        case "required":
            missing = [k for k in error.validator_value if k not in (error.instance or {})]
            return f"{where}: missing required key {', '.join(repr(k) for k in missing)}"
        case "enum":
            choices = ", ".join(str(c) for c in error.validator_value)
            return f"{where}: {shown(path, error.instance)} is not one of: {choices}"
        case "type":
            wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
            return f"{where}: expected {' or '.join(TYPE_NAMES.get(t, t) for t in wanted)}, got {kind_of(path, error.instance)}"
        case "propertyNames":
            return f"{where}: name {error.instance!r} is not allowed; use {HINTS['label']}"
        case "pattern" | "oneOf" | "minimum" | "maximum" if hint:
            return f"{where}: {shown(path, error.instance)} is not valid; write {hint}"
        case "minProperties" if where == "providers":
            return "providers: at least one provider is needed"
    if not quotable(path):  # jsonschema's own message quotes the value
        rule = RULES.get(str(error.validator), "is not valid here").format(error.validator_value)
        return f"{where}: {rule}"
    return f"{where}: {error.message}"


def describe_all(validator: jsonschema.protocols.Validator, data: Any, limit: int = 10) -> list[str]:
    """Every schema problem in document order, deepest first within a key, at most `limit`."""
    errors = sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    problems = [describe(e) for e in errors]
    unique = list(dict.fromkeys(problems))
    if len(unique) > limit:
        unique = unique[:limit] + [f"... and {len(unique) - limit} more problems"]
    return unique

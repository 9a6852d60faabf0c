"""Adding a credential to a provider in routes.yaml by editing its text, so the user's
comments and layout survive (a yaml.dump of the whole file would drop every comment).
The edit is a line insert; the result is only written once `loader.load` accepts it.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from modelmux.config import loader

_PLAIN = re.compile(r"[\w./~@+][\w./~@+-]*")


class EditError(Exception):
    """routes.yaml could not be edited; the message says why, for the user to add the lines."""


def scalar(text: str) -> str:
    """`text` as a YAML flow scalar: bare when that is unambiguous, else double-quoted."""
    if _PLAIN.fullmatch(text) and text not in ("~", "null", "true", "false", "yes", "no", "on", "off"):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def oauth_entry(label: str, oauth_path: str) -> str:
    return f"{{label: {scalar(label)}, oauth: {scalar(oauth_path)}}}"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _content(line: str) -> bool:
    """A line that says something: not blank, not only a comment."""
    return bool(line.strip()) and not line.lstrip().startswith("#")


def _block_end(lines: list[str], start: int, indent: int) -> int:
    """The index after the last content line of the block that opens at `start` and holds
    every following line indented deeper than `indent` (comments after it stay outside)."""
    last = start
    for i in range(start + 1, len(lines)):
        if _content(lines[i]):
            if _indent(lines[i]) <= indent:
                break
            last = i
    return last + 1


def _key_line(lines: list[str], start: int, end: int, key: str, indent: int | None) -> int | None:
    pattern = re.compile(rf"( *){re.escape(key)}:\s*(#.*)?$|( *){re.escape(key)}:\s+\S")
    for i in range(start, end):
        if _content(lines[i]) and pattern.match(lines[i]) and (indent is None or _indent(lines[i]) == indent):
            return i
    return None


def with_credential(text: str, provider: str, entry: str) -> str:
    """`text` with `- ENTRY` appended to providers.PROVIDER.credentials (a block list, an
    empty `[]`, or none yet). Raises EditError when the layout is not one of those."""
    lines = text.splitlines()
    top = _key_line(lines, 0, len(lines), "providers", 0)
    if top is None:
        raise EditError("it has no top-level providers: block")
    providers_end = _block_end(lines, top, 0)
    children = [i for i in range(top + 1, providers_end) if _content(lines[i])]
    if not children:
        raise EditError("its providers: block is empty")
    at = _key_line(lines, top + 1, providers_end, provider, _indent(lines[children[0]]))
    if at is None:
        raise EditError(f"provider '{provider}' is not written as a plain `{provider}:` block")
    provider_indent = _indent(lines[at])
    end = _block_end(lines, at, provider_indent)
    body = [i for i in range(at + 1, end) if _content(lines[i])]
    if not body:
        raise EditError(f"provider '{provider}' is written on one line")
    field_indent = _indent(lines[body[0]])
    key = _key_line(lines, at + 1, end, "credentials", field_indent)
    if key is None:  # a provider without credentials gets the key, after its last field
        new = [f"{' ' * field_indent}credentials:", f"{' ' * (field_indent + 2)}- {entry}"]
        return _joined(lines[:end] + new + lines[end:], text)
    value, hash_, comment = lines[key].split(":", 1)[1].partition("#")
    rest, comment = value.strip(), f"  {hash_}{comment}" if hash_ else ""
    if rest == "[]":
        new = [f"{' ' * field_indent}credentials:{comment}", f"{' ' * (field_indent + 2)}- {entry}"]
        return _joined(lines[:key] + new + lines[key + 1 :], text)
    if rest.startswith("[") and rest.endswith("]"):  # a one-line list: the entry goes at its end
        close = lines[key].rfind("]", 0, len(lines[key]) - len(comment.lstrip()) if comment else None)
        return _joined(lines[:key] + [f"{lines[key][:close]}, {entry}{lines[key][close:]}"] + lines[key + 1 :], text)
    if rest:
        raise EditError(f"provider '{provider}' writes its credentials as {rest[:40]!r}, not a list")
    items_end = key + 1
    item_indent = None
    for i in range(key + 1, len(lines)):
        if not _content(lines[i]):
            continue
        stripped = lines[i].lstrip(" ")
        deeper = _indent(lines[i]) > field_indent
        item = _indent(lines[i]) == field_indent and stripped.startswith("- ")
        if not (deeper or item):
            break
        if stripped.startswith("- ") and item_indent is None:
            item_indent = _indent(lines[i])
        items_end = i + 1
    if item_indent is None:
        raise EditError(f"provider '{provider}''s credentials: has no list items")
    return _joined(lines[:items_end] + [f"{' ' * item_indent}- {entry}"] + lines[items_end:], text)


def _joined(lines: list[str], original: str) -> str:
    newline = "\r\n" if "\r\n" in original else "\n"
    return newline.join(lines) + newline


def add_credential(path: Path, provider: str, entry: str) -> None:
    """Append `entry` to providers.PROVIDER.credentials in the routes.yaml at `path`, in
    place, only if the edited file loads: a running gateway reloads the file on change,
    so it must never see a broken one. Raises EditError with the reason."""
    text = path.read_text(encoding="utf-8")
    edited = with_credential(text, provider, entry)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as file:
            file.write(edited)
        shutil.copymode(path, temporary)
        try:
            loader.load(temporary)  # relative token paths resolve from the same directory
        except loader.ConfigError as e:
            raise EditError(_why_not(path, e)) from e
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _why_not(path: Path, edited: loader.ConfigError) -> str:
    try:
        loader.load(path)
    except loader.ConfigError as e:
        return f"it does not load as it is ({'; '.join(e.problems)})"
    return f"with the credential it would not load ({'; '.join(edited.problems)})"

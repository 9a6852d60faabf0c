"""`modelmux env`'s output in each shell's own syntax: lines that set and unset a
profile's variables in the shell that evaluates them. Pure: values in, text out.

How each shell runs them (docs/cli.md's lines):
    bash, zsh:   eval "$(modelmux env glm)"
    fish:        modelmux env glm --shell fish | source
    PowerShell:  modelmux env glm --shell powershell | Invoke-Expression
    cmd:         for /f "delims=" %i in ('modelmux env glm --shell cmd') do %i
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import PurePath

SHELLS = ("bash", "zsh", "fish", "powershell", "cmd")
# $SHELL basenames that read POSIX `export`; pwsh can be a login shell on Linux and macOS.
POSIX_SHELLS = ("bash", "zsh", "sh", "dash", "ksh", "mksh", "ash", "yash")
SHELL_NAMES = {**{name: "bash" for name in POSIX_SHELLS}, "zsh": "zsh", "fish": "fish", "pwsh": "powershell",
               "powershell": "powershell"}
# PowerShell reads these as single quotes too (about_Quoting_Rules), so each is doubled like '.
POWERSHELL_QUOTES = "'\u2018\u2019\u201a\u201b"
# A line break ends a pipeline line of Invoke-Expression's input (one expression per line),
# so one inside a value is written as a double-quoted escape between single-quoted parts.
POWERSHELL_BREAKS = {"\n": '"`n"', "\r": '"`r"'}


class ShellError(ValueError):
    """A value the chosen shell cannot be given; the message names the variable and a way out."""


def default_shell(environ: Mapping[str, str], os_name: str = os.name) -> str:
    """The shell `modelmux env` writes for without --shell. POSIX: $SHELL's basename
    (the login shell, which is what most terminals start), bash syntax when unknown.
    Windows: PowerShell when PSModulePath holds the user's own module directory, which
    PowerShell adds at start-up; Windows sets PSModulePath's two machine entries for
    every process, cmd included, so its presence alone says nothing."""
    if os_name == "nt":
        entries = [entry for entry in environ.get("PSModulePath", "").split(";") if entry]
        return "powershell" if len(entries) >= 3 else "cmd"
    name = PurePath(environ.get("SHELL", "")).name.removesuffix(".exe")
    return SHELL_NAMES.get(name, "bash")


def shell_lines(values: Mapping[str, str], unset: Iterable[str], shell: str = "bash") -> str:
    """The lines that unset `unset` and set `values`, for `shell` (one of SHELLS)."""
    unset_line, set_line = SYNTAX[shell]
    lines = [unset_line(name) for name in unset]
    lines += [set_line(name, value) for name, value in values.items()]
    return "\n".join(lines) + "\n"


def posix_quote(value: str) -> str:
    """POSIX single quotes: nothing inside is special except the quote itself."""
    return "'" + value.replace("'", "'\\''") + "'"


def fish_quote(value: str) -> str:
    """fish single quotes: only \\' and \\\\ are escapes inside them."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def powershell_quote(value: str) -> str:
    """PowerShell single quotes (no $ or ` expansion), line breaks spliced in as escapes."""
    parts = re.split(r"([\r\n])", value)
    quoted = [
        POWERSHELL_BREAKS[part] if part in POWERSHELL_BREAKS else "'" + re.sub(f"([{POWERSHELL_QUOTES}])", r"\1\1", part) + "'"
        for part in parts
        if part
    ]
    return " + ".join(quoted) or "''"


def cmd_set(name: str, value: str) -> str:
    """`set "NAME=value"`: inside the quotes & | < > ^ are plain, and `set` keeps a "
    inside the value (it strips only the first and the last quote). % and ! stay as they
    are: text a `for /f` variable brings in is not %-expanded again, and ! only is with
    delayed expansion on (off by default). cmd has no line break in a variable, and
    setting an empty value deletes the variable, so those are refused."""
    if "\n" in value or "\r" in value:
        raise ShellError(
            f"{name}'s value has a line break, which cmd cannot set; use `modelmux run`, or PowerShell "
            f"(`modelmux env PROFILE --shell powershell | Invoke-Expression`)"
        )
    if not value:
        raise ShellError(f"{name} is empty, which cmd cannot set (`set {name}=` deletes it); use `modelmux run`")
    return f'set "{name}={value}"'


SYNTAX: dict[str, tuple[Callable[[str], str], Callable[[str, str], str]]] = {
    "bash": (lambda name: f"unset {name}", lambda name, value: f"export {name}={posix_quote(value)}"),
    "fish": (lambda name: f"set -e {name};", lambda name, value: f"set -gx {name} {fish_quote(value)};"),
    "powershell": (
        lambda name: f"Remove-Item Env:{name} -ErrorAction SilentlyContinue",
        lambda name, value: f"$env:{name} = {powershell_quote(value)}",
    ),
    "cmd": (lambda name: f"set {name}=", cmd_set),
}
SYNTAX["zsh"] = SYNTAX["bash"]

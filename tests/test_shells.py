"""`modelmux env`'s syntax per shell (pure), and the shell it picks without --shell."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from modelmux.cli import main as cli
from modelmux.cli.shells import ShellError, default_shell, shell_lines

VALUES = {
    "SPACES": "two words",
    "QUOTES": """it's "glm" `x`""",
    "DOLLAR": "$HOME and $(id) and \\n",
    "PERCENT": "100% %PATH% !x! ^&|<>",
    "UNICODE": "ünïcødé ‘smart’ “quotes”",
}
UNSET = ["ANTHROPIC_API_KEY", "CLAUDE_CODE_USE_BEDROCK"]
HEADERS = {"ANTHROPIC_CUSTOM_HEADERS": "x-modelmux-profile: glm\nx-modelmux-key: k"}


def test_bash_and_zsh_export_single_quoted_values() -> None:
    expected = """\
unset ANTHROPIC_API_KEY
unset CLAUDE_CODE_USE_BEDROCK
export SPACES='two words'
export QUOTES='it'\\''s "glm" `x`'
export DOLLAR='$HOME and $(id) and \\n'
export PERCENT='100% %PATH% !x! ^&|<>'
export UNICODE='ünïcødé ‘smart’ “quotes”'
"""
    assert shell_lines(VALUES, UNSET, "bash") == expected
    assert shell_lines(VALUES, UNSET, "zsh") == expected
    assert shell_lines(HEADERS, [], "bash") == "export ANTHROPIC_CUSTOM_HEADERS='x-modelmux-profile: glm\nx-modelmux-key: k'\n"


def test_bash_evaluates_the_lines_to_the_exact_values() -> None:
    script = shell_lines(VALUES | HEADERS, UNSET, "bash") + 'printf "%s\\0" "$SPACES" "$QUOTES" "$DOLLAR" "$PERCENT" ' \
        '"$UNICODE" "$ANTHROPIC_CUSTOM_HEADERS" "${ANTHROPIC_API_KEY-unset}"'
    result = subprocess.run(["bash", "-c", script], env={"ANTHROPIC_API_KEY": "sk"}, capture_output=True, timeout=10)
    assert result.stdout.decode().split("\0")[:-1] == [*VALUES.values(), HEADERS["ANTHROPIC_CUSTOM_HEADERS"], "unset"]


def test_fish_sets_globals_exported_with_backslash_escapes() -> None:
    assert shell_lines(VALUES, UNSET, "fish") == """\
set -e ANTHROPIC_API_KEY;
set -e CLAUDE_CODE_USE_BEDROCK;
set -gx SPACES 'two words';
set -gx QUOTES 'it\\'s "glm" `x`';
set -gx DOLLAR '$HOME and $(id) and \\\\n';
set -gx PERCENT '100% %PATH% !x! ^&|<>';
set -gx UNICODE 'ünïcødé ‘smart’ “quotes”';
"""
    # `| source` reads the whole text, so a line break inside quotes is part of the value.
    assert shell_lines(HEADERS, [], "fish") == "set -gx ANTHROPIC_CUSTOM_HEADERS 'x-modelmux-profile: glm\nx-modelmux-key: k';\n"


def test_powershell_doubles_every_kind_of_single_quote_and_splices_line_breaks() -> None:
    assert shell_lines(VALUES, UNSET, "powershell") == """\
Remove-Item Env:ANTHROPIC_API_KEY -ErrorAction SilentlyContinue
Remove-Item Env:CLAUDE_CODE_USE_BEDROCK -ErrorAction SilentlyContinue
$env:SPACES = 'two words'
$env:QUOTES = 'it''s "glm" `x`'
$env:DOLLAR = '$HOME and $(id) and \\n'
$env:PERCENT = '100% %PATH% !x! ^&|<>'
$env:UNICODE = 'ünïcødé ‘‘smart’’ “quotes”'
"""
    # Invoke-Expression runs each piped line on its own: a value must not span lines.
    assert shell_lines(HEADERS | {"CR": "a\r\nb", "EMPTY": ""}, [], "powershell") == (
        "$env:ANTHROPIC_CUSTOM_HEADERS = 'x-modelmux-profile: glm' + \"`n\" + 'x-modelmux-key: k'\n"
        "$env:CR = 'a' + \"`r\" + \"`n\" + 'b'\n"
        "$env:EMPTY = ''\n"
    )


def test_cmd_quotes_the_whole_assignment_and_keeps_percent_and_quotes() -> None:
    assert shell_lines(VALUES, UNSET, "cmd") == """\
set ANTHROPIC_API_KEY=
set CLAUDE_CODE_USE_BEDROCK=
set "SPACES=two words"
set "QUOTES=it's "glm" `x`"
set "DOLLAR=$HOME and $(id) and \\n"
set "PERCENT=100% %PATH% !x! ^&|<>"
set "UNICODE=ünïcødé ‘smart’ “quotes”"
"""


def test_cmd_refuses_what_it_cannot_set() -> None:
    with pytest.raises(ShellError) as broken:
        shell_lines(HEADERS, [], "cmd")
    assert str(broken.value) == (
        "ANTHROPIC_CUSTOM_HEADERS's value has a line break, which cmd cannot set; use `modelmux run`, "
        "or PowerShell (`modelmux env PROFILE --shell powershell | Invoke-Expression`)"
    )
    with pytest.raises(ShellError, match=r"^EMPTY is empty, which cmd cannot set \(`set EMPTY=` deletes it\)"):
        shell_lines({"EMPTY": ""}, [], "cmd")


@pytest.mark.parametrize(
    ("environ", "os_name", "shell"),
    [
        ({"SHELL": "/bin/bash"}, "posix", "bash"),
        ({"SHELL": "/usr/bin/zsh"}, "posix", "zsh"),
        ({"SHELL": "/opt/homebrew/bin/fish"}, "posix", "fish"),
        ({"SHELL": "/usr/local/bin/pwsh"}, "posix", "powershell"),
        ({"SHELL": "/bin/dash"}, "posix", "bash"),
        ({"SHELL": "/usr/bin/nu"}, "posix", "bash"),  # unknown: POSIX syntax
        ({}, "posix", "bash"),
        # Windows sets these two machine entries for every process; PowerShell adds the user's own.
        ({"PSModulePath": r"C:\Program Files\WindowsPowerShell\Modules;C:\WINDOWS\system32\WindowsPowerShell\v1.0\Modules"},
         "nt", "cmd"),
        ({"PSModulePath": r"C:\Users\a\Documents\WindowsPowerShell\Modules;C:\Program Files\WindowsPowerShell\Modules;"
                          r"C:\WINDOWS\system32\WindowsPowerShell\v1.0\Modules"}, "nt", "powershell"),
        ({}, "nt", "cmd"),
        ({"SHELL": "/usr/bin/bash"}, "nt", "cmd"),  # Git Bash's $SHELL does not make cmd read `export`
    ],
)  # fmt: skip
def test_default_shell(environ: dict[str, str], os_name: str, shell: str) -> None:
    assert default_shell(environ, os_name) == shell


ROUTES = """
providers:
  zai: {protocol: anthropic, base_url: 'https://api.z.ai/api/anthropic', credentials: [{label: m, key: k}]}
profiles:
  glm: {slots: {opus: glm-4.6}, providers: [zai]}
"""


def test_env_command_prints_the_chosen_or_detected_shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text(ROUTES)
    for name in ("ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_CUSTOM_HEADERS", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SHELL", "/usr/bin/fish")
    assert cli.main(["env", "glm", "--config", str(routes)]) == 0
    assert "set -gx ANTHROPIC_DEFAULT_OPUS_MODEL 'glm-4.6';\n" in capsys.readouterr().out
    assert cli.main(["env", "glm", "--config", str(routes), "--shell", "cmd"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert 'set "ANTHROPIC_DEFAULT_OPUS_MODEL=glm-4.6"' in lines and 'set "ANTHROPIC_AUTH_TOKEN=modelmux-placeholder"' in lines
    routes.write_text(ROUTES.replace("providers:\n", "server: {api_key: s3cret}\nproviders:\n", 1))
    assert cli.main(["env", "glm", "--config", str(routes), "--shell", "cmd"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("modelmux: ANTHROPIC_CUSTOM_HEADERS's value has a line break, which cmd cannot set")
    assert "s3cret" not in captured.err

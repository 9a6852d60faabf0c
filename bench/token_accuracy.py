"""How close modelmux.translate.token_estimate's estimate is to a real tokenizer, and how fast it is.

    python bench/token_accuracy.py

The corpus is built here (nothing is read from disk or the network): a Claude-Code-like
request (long system prompt, 24 tools with full JSON schemas, a multi-turn history with
tool_use/tool_result carrying source code and shell output, a thinking block) and
separate pieces of English prose, Python, JSON, CJK, a minified line and hex-heavy logs.

The reference is the Claude tokenizer that the `anthropic` SDK shipped until 0.38
(`anthropic/tokenizer.json`, loaded with Hugging Face `tokenizers`). Neither is a project
dependency; to measure, install both into the venv without touching its `anthropic`:

    pip install tokenizers
    pip install --no-deps --target "$VIRTUAL_ENV/share/claude-tokenizer" anthropic==0.38.0

or point MODELMUX_TOKENIZER_JSON at any tokenizer.json. Without them this prints how to
get them and exits 0.

For a whole request the reference is the tokenizer's count of every text the estimator
counts (token_estimate.request_parts) plus the same non-text part (images, PDFs, documented
per-message and tool-prompt overheads): what differs is only the text heuristic.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modelmux.translate import token_estimate  # noqa: E402

Counter = Callable[[str], int]

# ---------------------------------------------------------------------------
# The reference tokenizer
# ---------------------------------------------------------------------------

INSTALL_HINT = """\
The reference tokenizer is not installed, so there is nothing to compare against.
Install the measuring tools into this venv (they are not project dependencies):

    {python} -m pip install tokenizers
    {python} -m pip install --no-deps --target {target} anthropic==0.38.0

(anthropic<=0.38 ships the Claude tokenizer as anthropic/tokenizer.json; installing it
with --target leaves the venv's own anthropic alone.) Or set MODELMUX_TOKENIZER_JSON
to the path of a Hugging Face tokenizer.json."""


def _default_tokenizer_dir() -> Path:
    return Path(sys.prefix) / "share" / "claude-tokenizer"


def tokenizer_path() -> Path | None:
    """Where a Claude tokenizer.json is: the env override, the --target install, or an old anthropic."""
    candidates = []
    if override := os.environ.get("MODELMUX_TOKENIZER_JSON"):
        candidates.append(Path(override))
    candidates.append(_default_tokenizer_dir() / "anthropic" / "tokenizer.json")
    try:
        import importlib.util

        spec = importlib.util.find_spec("anthropic")
    except (ImportError, ValueError):
        spec = None
    if spec and spec.origin:
        candidates.append(Path(spec.origin).parent / "tokenizer.json")
    return next((path for path in candidates if path.is_file()), None)


def load_reference() -> tuple[Counter, str] | None:
    """(count function, description) of the reference tokenizer, or None when it is missing."""
    path = tokenizer_path()
    try:
        from tokenizers import Tokenizer  # type: ignore[import-not-found]
    except ImportError:
        return None
    if path is None:
        return None
    tokenizer = Tokenizer.from_file(str(path))

    def count(text: str) -> int:
        return len(tokenizer.encode(text).ids) if text else 0

    return count, f"Claude tokenizer.json ({path})"


def reference_request_tokens(body: dict[str, Any], count: Counter) -> int:
    texts, fixed = token_estimate.request_parts(body)
    return fixed + sum(count(text) for text in texts)


# ---------------------------------------------------------------------------
# Corpus: a Claude-Code-like request
# ---------------------------------------------------------------------------

SYSTEM_PROMPT = """\
You are a coding agent that works inside the user's terminal. You help people build, \
debug, review and explain software. Use the instructions below and the tools available \
to you to help the user.

Never help write code whose purpose is to harm other people or systems, such as malware \
or tools for breaking into accounts. Security work is welcome when it is defensive: \
explaining a vulnerability, writing detection rules, hardening a configuration.

If the user asks for help with the agent itself, tell them to run /help, and to report \
problems at the project's issue tracker.

# Tone and style
Be brief and direct. Your output is shown in a terminal with a monospace font and is \
rendered as CommonMark, so use Markdown sparingly: short lists, fenced code blocks with a \
language tag, and `inline code` for names of files, functions and commands.
- Answer in fewer than four lines unless the user asks for detail or the task needs it.
- Do not add a preamble ("Sure! Here is...") or a closing summary of what you just did.
- When you run a command that changes the system, say in one sentence what it does and why.
- Only use emoji if the user asks for them.
- If you cannot or will not help with something, say so in one or two sentences without \
lecturing, and offer an alternative when there is one.

<example>
user: what is 17 * 23?
assistant: 391
</example>

<example>
user: which file defines the retry policy?
assistant: [searches the code base]
`src/http/retry.py` (`RetryPolicy`, line 41).
</example>

# Being proactive
Do what was asked, and the follow-up actions that are clearly implied by it, but nothing \
that would surprise the user. If they ask how to approach something, answer the question \
first instead of immediately changing files.

# Following the conventions of the project
Before you change a file, find out how the code around it is written and imitate it: the \
libraries it already uses, its naming, its typing, its error handling and its tests.
- Never assume that a library is available. Check the manifest (package.json, \
pyproject.toml, Cargo.toml, go.mod) or the neighbouring imports first.
- When you create a new component, look at an existing one to see how it is structured.
- Follow security best practices. Never log or commit secrets, keys or tokens.

# Code style
- Do not add comments unless the user asks, or the code does something surprising that a \
reader needs explained.

# Task management
You have the TodoWrite tool to plan and track work. Use it for any task with more than \
two steps, so that both you and the user can see progress. Mark a todo as in_progress \
before you start it and as completed as soon as it is done; do not batch completions. \
Keep exactly one todo in progress at a time.

<example>
user: run the build and fix the type errors
assistant: I'll add these to the todo list:
- Run the build
- Fix each type error

Running the build now. Found 7 type errors, so I am adding 7 todos.
Marking the first one as in_progress...
</example>

# Doing tasks
Most requests are software engineering tasks: fixing bugs, adding features, refactoring, \
explaining code. For those:
1. Plan with TodoWrite if the task has several steps.
2. Search the code base to understand it; run searches in parallel when they are independent.
3. Implement the change with the tools available.
4. Verify it with the project's tests. Never assume a test framework; read the README or \
the CI configuration to find the right command.
5. Run the linter and the type checker (for example `npm run lint`, `ruff check`, \
`mypy`, `cargo clippy`) when the project has them. If you cannot find the command, ask \
the user and suggest recording it in AGENTS.md.

Never commit unless the user explicitly asks you to.

# Tool usage policy
- Prefer the dedicated tools over shell commands: Read instead of cat, Grep instead of \
grep or rg, Glob instead of find, Edit instead of sed.
- When several tool calls do not depend on each other, send them in one message so they \
run in parallel. For example, to see the status and the recent history of a repository, \
run `git status` and `git log` at the same time.
- When WebFetch reports a redirect to another host, fetch the new URL in a second call.
- Use the Task tool for open-ended searches that may need several rounds of globbing and \
grepping, to keep the main context small.

# Referencing code
When you mention a function or a piece of code, include `file_path:line_number` so the \
user can jump to it.

<example>
user: where are failed payments retried?
assistant: In `schedule_retry` in src/billing/retries.py:118, which backs off exponentially.
</example>

Here is useful information about the environment you are running in:
<env>
Working directory: /home/dev/src/inventory-service
Is directory a git repo: Yes
Platform: linux
OS Version: Linux 6.8.0-45-generic
Today's date: 2025-06-14
</env>
You are powered by the model named Sonnet 4. The exact model ID is claude-sonnet-4-20250514.

gitStatus: This is the git status at the start of the conversation. It is a snapshot and \
will not update during the conversation.
Current branch: feature/cache-expiry

Main branch (you will usually use this for PRs): main

Status:
M src/inventory/cache.py
M tests/test_cache.py
?? notes/benchmarks.md

Recent commits:
4f2c9e1 Make the warehouse sync idempotent
a81d3b7 Add per-tenant rate limits to the stock endpoint
e03f5c2 Bump httpx to 0.27 and drop the requests fallback
9b7d114 Document the reservation state machine
"""

PROJECT_NOTES = """\
# inventory-service

Stock levels, reservations and warehouse sync for the storefront.

## Commands
- `make dev`: start the API on :8080 with auto-reload
- `make test`: run pytest with coverage (must stay above 85%)
- `make lint`: ruff + mypy --strict
- `make migrate`: apply Alembic migrations to the local Postgres

## Conventions
- Python 3.12, type hints everywhere, dataclasses for value objects
- No ORM objects outside `src/inventory/db/`; the rest of the code sees dataclasses
- Money is an integer number of cents; never use float for prices
- Times are timezone-aware UTC datetimes; convert at the edges only
- Every public function has a test; use the fakes in tests/fakes.py rather than mocks
- Log with structlog, one event per line, keys in snake_case

## Gotchas
- The warehouse API returns 200 with an error body when a SKU is unknown
- Reservations expire after 15 minutes unless confirmed (see RESERVATION_TTL)
- The cache is per process; there are 4 workers in production
"""


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
        "$schema": "http://json-schema.org/draft-07/schema#",
    }


def _tool(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"name": name, "description": description, "input_schema": _schema(properties, required)}


def _string(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


def _number(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "number", "description": description, **extra}


def _boolean(description: str) -> dict[str, Any]:
    return {"type": "boolean", "description": description}


def tool_definitions() -> list[dict[str, Any]]:
    """24 tools shaped like a coding agent's: built-ins, then MCP servers' tools."""
    todo_item = {
        "type": "object",
        "properties": {
            "content": {"type": "string", "minLength": 1},
            "status": {"type": "string", "enum": ["pending", "in_progress", "completed"]},
            "activeForm": {"type": "string", "minLength": 1},
        },
        "required": ["content", "status", "activeForm"],
        "additionalProperties": False,
    }
    edit_item = {
        "type": "object",
        "properties": {
            "old_string": _string("The text to replace"),
            "new_string": _string("The text to replace it with"),
            "replace_all": {"type": "boolean", "default": False, "description": "Replace every occurrence of old_string (default false)."},
        },
        "required": ["old_string", "new_string"],
        "additionalProperties": False,
    }
    return [
        _tool(
            "Task",
            "Start a sub-agent that works on a complex, multi-step task on its own and reports back once.\n\n"
            "Available agent types and the tools they can use:\n"
            "- general-purpose: researches questions, searches code and runs multi-step tasks (tools: *)\n"
            "- test-runner: runs the test suite and summarises failures (tools: Bash, Read, Grep)\n\n"
            "When to use it:\n"
            "- An open-ended search where you are not sure the first few greps will find the answer\n"
            "- Independent pieces of work that can run in parallel; start several agents in one message\n\n"
            "When not to use it:\n"
            "- To read a file whose path you already know: use Read\n"
            "- To find a class definition such as `class Reservation`: use Grep\n\n"
            "The agent's final message is returned to you, not shown to the user; summarise it for them. "
            "Each invocation is stateless, so the prompt must contain everything the agent needs to know, "
            "and say exactly what it should return.",
            {
                "description": _string("A short (3-5 word) description of the task"),
                "prompt": _string("The task for the agent to perform"),
                "subagent_type": _string("The type of specialized agent to use for this task"),
            },
            ["description", "prompt", "subagent_type"],
        ),
        _tool(
            "Bash",
            "Runs a bash command in a persistent shell session, with an optional timeout.\n\n"
            "Before running a command:\n"
            "1. If it creates files or directories, first check with LS that the parent directory exists.\n"
            "2. Quote paths that contain spaces with double quotes, e.g. cd \"/home/dev/My Project\".\n\n"
            "Usage notes:\n"
            "- The command argument is required.\n"
            "- The timeout is in milliseconds, up to 600000 (10 minutes); the default is 120000.\n"
            "- Output longer than 30000 characters is truncated.\n"
            "- Avoid find, grep, cat, head, tail and ls; use Glob, Grep, Read and LS instead.\n"
            "- Chain dependent commands with '&&' and independent ones with ';'. Do not use newlines to separate commands.\n"
            "- Keep the working directory stable: prefer absolute paths to cd.\n\n"
            "# Committing changes with git\n"
            "Only commit when the user asks. Then: run git status, git diff and git log in parallel; draft a "
            "message of one or two sentences that says why, not what; never update the git config; never use "
            "interactive flags such as -i; never push unless asked. If a pre-commit hook changes files, "
            "commit again once to include them.\n\n"
            "# Pull requests\n"
            "Use the gh command for everything GitHub related. Check whether the branch tracks a remote and is "
            "up to date, look at every commit since the branch diverged from main, then create the PR with a "
            "summary of one to three bullet points and a test plan checklist.",
            {
                "command": _string("The command to execute"),
                "timeout": _number("Optional timeout in milliseconds (max 600000)"),
                "description": _string(
                    "Clear, concise description of what this command does in 5-10 words. Examples:\n"
                    "Input: ls\nOutput: Lists files in current directory\n\n"
                    "Input: npm install\nOutput: Installs package dependencies"
                ),
                "run_in_background": _boolean("Set to true to run this command in the background. Use BashOutput to read the output later."),
            },
            ["command"],
        ),
        _tool(
            "Glob",
            "Fast file pattern matching that works with any size of code base.\n"
            "- Supports glob patterns like \"**/*.js\" or \"src/**/*.ts\"\n"
            "- Returns matching file paths sorted by modification time\n"
            "- Use it when you need to find files by name\n"
            "- For an open-ended search that may need several rounds, use the Task tool instead",
            {
                "pattern": _string("The glob pattern to match files against"),
                "path": _string(
                    "The directory to search in. If not specified, the current working directory will be used. "
                    "Omit this field to use the default directory; do not enter \"undefined\" or \"null\"."
                ),
            },
            ["pattern"],
        ),
        _tool(
            "Grep",
            "A powerful search tool built on ripgrep.\n\n"
            "Usage:\n"
            "- ALWAYS use Grep for search tasks. Never run grep or rg through Bash.\n"
            "- Supports full regex syntax (e.g. \"log.*Error\", \"function\\\\s+\\\\w+\")\n"
            "- Filter files with the glob parameter (e.g. \"*.js\", \"**/*.tsx\") or the type parameter (e.g. \"js\", \"py\", \"rust\")\n"
            "- Output modes: \"content\" shows matching lines, \"files_with_matches\" shows only file paths (default), \"count\" shows match counts\n"
            "- Pattern syntax is ripgrep's, not grep's: literal braces need escaping (use `interface\\\\{\\\\}` to find `interface{}` in Go code)\n"
            "- Multiline matching: by default patterns match within single lines only; use multiline: true for patterns like `struct \\\\{[\\\\s\\\\S]*?field`",
            {
                "pattern": _string("The regular expression pattern to search for in file contents"),
                "path": _string("File or directory to search in (rg PATH). Defaults to current working directory."),
                "glob": _string("Glob pattern to filter files (e.g. \"*.js\", \"*.{ts,tsx}\") - maps to rg --glob"),
                "output_mode": _string(
                    "Output mode: \"content\" shows matching lines (supports -A/-B/-C context, -n line numbers, head_limit), "
                    "\"files_with_matches\" shows file paths (supports head_limit), \"count\" shows match counts (supports head_limit). "
                    "Defaults to \"files_with_matches\".",
                    enum=["content", "files_with_matches", "count"],
                ),
                "-B": _number("Number of lines to show before each match (rg -B). Requires output_mode: \"content\", ignored otherwise."),
                "-A": _number("Number of lines to show after each match (rg -A). Requires output_mode: \"content\", ignored otherwise."),
                "-C": _number("Number of lines to show before and after each match (rg -C). Requires output_mode: \"content\", ignored otherwise."),
                "-n": _boolean("Show line numbers in output (rg -n). Requires output_mode: \"content\", ignored otherwise."),
                "-i": _boolean("Case insensitive search (rg -i)"),
                "type": _string("File type to search (rg --type). Common types: js, py, rust, go, java, etc. More efficient than include for standard file types."),
                "head_limit": _number("Limit output to first N lines/entries, equivalent to \"| head -N\". Works across all output modes."),
                "multiline": _boolean("Enable multiline mode where . matches newlines and patterns can span lines (rg -U --multiline-dotall). Default: false."),
            },
            ["pattern"],
        ),
        _tool(
            "LS",
            "Lists files and directories in a given path. The path parameter must be an absolute path, not a relative path. "
            "You can optionally provide an array of glob patterns to ignore with the ignore parameter. "
            "You should generally prefer the Glob and Grep tools, if you know which directories to search.",
            {
                "path": _string("The absolute path to the directory to list (must be absolute, not relative)"),
                "ignore": {"type": "array", "items": {"type": "string"}, "description": "List of glob patterns to ignore"},
            },
            ["path"],
        ),
        _tool(
            "ExitPlanMode",
            "Use this tool when you are in plan mode and have finished presenting your plan and are ready to code. "
            "This will prompt the user to exit plan mode. Only use it when the task requires planning the implementation "
            "steps of a task that requires writing code; for research tasks where you are gathering information, "
            "searching files, reading files or in general trying to understand the code base, do not use it.",
            {"plan": _string("The plan you came up with, that you want to run by the user for approval. Supports markdown. The plan should be pretty concise.")},
            ["plan"],
        ),
        _tool(
            "Read",
            "Reads a file from the local filesystem. You can access any file directly by using this tool.\n"
            "Assume this tool is able to read all files on the machine. If the user provides a path to a file, assume that path is valid. "
            "It is okay to read a file that does not exist; an error will be returned.\n\n"
            "Usage:\n"
            "- The file_path parameter must be an absolute path, not a relative path\n"
            "- By default, it reads up to 2000 lines starting from the beginning of the file\n"
            "- You can optionally specify a line offset and limit (especially handy for long files)\n"
            "- Any lines longer than 2000 characters will be truncated\n"
            "- Results are returned using cat -n format, with line numbers starting at 1\n"
            "- This tool can read images (PNG, JPG) and PDF files; their contents are presented visually\n"
            "- This tool can read Jupyter notebooks (.ipynb files) and returns all cells with their outputs\n"
            "- You can call multiple tools in a single response; it is always better to read several possibly useful files at once\n"
            "- If you read a file that exists but has empty contents you will receive a system reminder warning in place of file contents.",
            {
                "file_path": _string("The absolute path to the file to read"),
                "offset": _number("The line number to start reading from. Only provide if the file is too large to read at once"),
                "limit": _number("The number of lines to read. Only provide if the file is too large to read at once."),
            },
            ["file_path"],
        ),
        _tool(
            "Edit",
            "Performs exact string replacements in files.\n\n"
            "Usage:\n"
            "- You must use your Read tool at least once in the conversation before editing. This tool will error if you attempt an edit without reading the file.\n"
            "- When editing text from Read tool output, preserve the exact indentation (tabs/spaces) as it appears AFTER the line number prefix. "
            "The line number prefix format is: spaces + line number + tab. Everything after that tab is the actual file content to match. "
            "Never include any part of the line number prefix in the old_string or new_string.\n"
            "- ALWAYS prefer editing existing files in the codebase. NEVER write new files unless explicitly required.\n"
            "- The edit will FAIL if old_string is not unique in the file. Either provide a larger string with more surrounding context "
            "to make it unique or use replace_all to change every instance of old_string.\n"
            "- Use replace_all for replacing and renaming strings across the file, for instance to rename a variable.",
            {
                "file_path": _string("The absolute path to the file to modify"),
                "old_string": _string("The text to replace"),
                "new_string": _string("The text to replace it with (must be different from old_string)"),
                "replace_all": {"type": "boolean", "default": False, "description": "Replace all occurences of old_string (default false)"},
            },
            ["file_path", "old_string", "new_string"],
        ),
        _tool(
            "MultiEdit",
            "This is a tool for making multiple edits to a single file in one operation. It is built on top of the Edit tool and allows "
            "you to perform multiple find-and-replace operations efficiently. Prefer this tool over the Edit tool when you need to make "
            "multiple edits to the same file.\n\n"
            "IMPORTANT:\n"
            "- All edits are applied in sequence, in the order they are provided\n"
            "- Each edit operates on the result of the previous edit\n"
            "- All edits must be valid for the operation to succeed: if any edit fails, none will be applied\n"
            "- Since edits are applied in sequence, ensure that earlier edits don't affect the text that later edits are trying to find",
            {
                "file_path": _string("The absolute path to the file to modify"),
                "edits": {"type": "array", "items": edit_item, "minItems": 1, "description": "Array of edit operations to perform sequentially on the file"},
            },
            ["file_path", "edits"],
        ),
        _tool(
            "Write",
            "Writes a file to the local filesystem.\n\n"
            "Usage:\n"
            "- This tool will overwrite the existing file if there is one at the provided path.\n"
            "- If this is an existing file, you MUST use the Read tool first to read the file's contents.\n"
            "- ALWAYS prefer editing existing files in the codebase. NEVER write new files unless explicitly required.\n"
            "- NEVER proactively create documentation files (*.md) or README files. Only create documentation files if explicitly requested by the User.",
            {
                "file_path": _string("The absolute path to the file to write (must be absolute, not relative)"),
                "content": _string("The content to write to the file"),
            },
            ["file_path", "content"],
        ),
        _tool(
            "NotebookEdit",
            "Completely replaces the contents of a specific cell in a Jupyter notebook (.ipynb file) with new source. "
            "The notebook_path parameter must be an absolute path. The cell_id is the ID of the cell to edit. "
            "Use edit_mode=insert to add a new cell at the index specified by cell_number, and edit_mode=delete to delete it.",
            {
                "notebook_path": _string("The absolute path to the Jupyter notebook file to edit (must be absolute, not relative)"),
                "cell_id": _string("The ID of the cell to edit. When inserting a new cell, the new cell will be inserted after the cell with this ID."),
                "new_source": _string("The new source for the cell"),
                "cell_type": _string("The type of the cell (code or markdown). If not specified, it defaults to the current cell type.", enum=["code", "markdown"]),
                "edit_mode": _string("The type of edit to make (replace, insert, delete). Defaults to replace.", enum=["replace", "insert", "delete"]),
            },
            ["notebook_path", "new_source"],
        ),
        _tool(
            "WebFetch",
            "- Fetches content from a specified URL and processes it using an AI model\n"
            "- Takes a URL and a prompt as input\n"
            "- Fetches the URL content, converts HTML to markdown\n"
            "- Processes the content with the prompt using a small, fast model\n"
            "- Returns the model's response about the content\n\n"
            "Usage notes:\n"
            "- If an MCP-provided web fetch tool is available, prefer using that tool instead of this one.\n"
            "- The URL must be a fully-formed valid URL; HTTP URLs will be automatically upgraded to HTTPS\n"
            "- This tool is read-only and does not modify any files\n"
            "- Results may be summarized if the content is very large\n"
            "- Includes a self-cleaning 15-minute cache for faster responses when repeatedly accessing the same URL",
            {
                "url": _string("The URL to fetch content from", format="uri"),
                "prompt": _string("The prompt to run on the fetched content"),
            },
            ["url", "prompt"],
        ),
        _tool(
            "TodoWrite",
            "Use this tool to create and manage a structured task list for your current coding session. This helps you track progress, "
            "organize complex tasks, and demonstrate thoroughness to the user.\n\n"
            "## When to Use This Tool\n"
            "1. Complex multi-step tasks: when a task requires 3 or more distinct steps or actions\n"
            "2. Non-trivial and complex tasks that require careful planning or multiple operations\n"
            "3. User explicitly requests a todo list\n"
            "4. User provides multiple tasks (numbered or comma-separated)\n"
            "5. After receiving new instructions: immediately capture user requirements as todos\n\n"
            "## When NOT to Use This Tool\n"
            "Skip using this tool when there is only a single, straightforward task, or the task is purely conversational.\n\n"
            "## Task States\n"
            "- pending: Task not yet started\n"
            "- in_progress: Currently working on (limit to ONE task at a time)\n"
            "- completed: Task finished successfully\n\n"
            "Each task needs two forms: content (imperative, e.g. \"Run tests\") and activeForm (present continuous, e.g. \"Running tests\").",
            {"todos": {"type": "array", "items": todo_item, "description": "The updated todo list"}},
            ["todos"],
        ),
        _tool(
            "WebSearch",
            "- Allows searching the web and using the results to inform responses\n"
            "- Provides up-to-date information for current events and recent data\n"
            "- Returns search result information formatted as search result blocks\n"
            "- Domain filtering is supported to include or block specific websites\n"
            "- Searches are performed automatically within a single API call",
            {
                "query": _string("The search query to use", minLength=2),
                "allowed_domains": {"type": "array", "items": {"type": "string"}, "description": "Only include search results from these domains"},
                "blocked_domains": {"type": "array", "items": {"type": "string"}, "description": "Never include search results from these domains"},
            },
            ["query"],
        ),
        _tool(
            "BashOutput",
            "Retrieves output from a running or completed background bash shell. Always returns only new output since the last check, "
            "along with the shell status. Supports an optional regex filter to show only lines matching a pattern.",
            {
                "bash_id": _string("The ID of the background shell to retrieve output from"),
                "filter": _string("Optional regular expression to filter the output lines. Only lines matching this regex will be included in the result."),
            },
            ["bash_id"],
        ),
        _tool(
            "KillShell",
            "Kills a running background bash shell by its ID. Returns a success or failure status. Use it when you need to terminate a long-running shell.",
            {"shell_id": _string("The ID of the background shell to kill")},
            ["shell_id"],
        ),
        _tool(
            "SlashCommand",
            "Execute a slash command within the main conversation. Only use it for custom slash commands that appear in the "
            "Available Commands list below; do not guess commands.\n\nAvailable Commands:\n"
            "/review-pr <number>: Review a pull request and leave inline comments (project)\n"
            "/changelog: Draft the changelog entry for the current branch (project)\n"
            "/perf <endpoint>: Profile an endpoint against the staging data set (user)",
            {"command": _string("The slash command to execute with its arguments, e.g., \"/review-pr 123\"")},
            ["command"],
        ),
        _tool(
            "mcp__github__create_issue",
            "Create a new issue in a GitHub repository",
            {
                "owner": _string("Repository owner"),
                "repo": _string("Repository name"),
                "title": _string("Issue title"),
                "body": _string("Issue body content"),
                "labels": {"type": "array", "items": {"type": "string"}, "description": "Labels to apply to this issue"},
                "assignees": {"type": "array", "items": {"type": "string"}, "description": "Usernames to assign to this issue"},
                "milestone": _number("Milestone number"),
            },
            ["owner", "repo", "title"],
        ),
        _tool(
            "mcp__github__list_pull_requests",
            "List and filter repository pull requests",
            {
                "owner": _string("Repository owner"),
                "repo": _string("Repository name"),
                "state": _string("Filter by state", enum=["open", "closed", "all"]),
                "head": _string("Filter by head user/org and branch"),
                "base": _string("Filter by base branch"),
                "sort": _string("Sort by", enum=["created", "updated", "popularity", "long-running"]),
                "direction": _string("Sort direction", enum=["asc", "desc"]),
                "perPage": _number("Results per page (max 100)", minimum=1, maximum=100),
                "page": _number("Page number for pagination (min 1)", minimum=1),
            },
            ["owner", "repo"],
        ),
        _tool(
            "mcp__github__get_file_contents",
            "Get the contents of a file or directory from a GitHub repository",
            {
                "owner": _string("Repository owner (username or organization)"),
                "repo": _string("Repository name"),
                "path": _string("Path to file/directory"),
                "ref": _string("Accepts optional git refs such as `refs/tags/{tag}`, `refs/heads/{branch}` or `refs/pull/{pr_number}/head`"),
                "sha": _string("Accepts optional commit SHA. If specified, it will be used instead of ref"),
            },
            ["owner", "repo"],
        ),
        _tool(
            "mcp__postgres__query",
            "Run a read-only SQL query against the development database. Statements run inside a READ ONLY transaction that is rolled "
            "back afterwards, with a 5 second statement timeout. Results are returned as JSON rows, at most 500 of them.",
            {
                "sql": _string("The SQL query to run"),
                "params": {"type": "array", "items": {"type": ["string", "number", "boolean", "null"]}, "description": "Positional parameters for $1, $2, ..."},
            },
            ["sql"],
        ),
        _tool(
            "mcp__browser__navigate",
            "Navigate the controlled browser tab to a URL and wait for the page to finish loading. Returns the final URL, "
            "the HTTP status and the page title.",
            {
                "url": _string("The URL to navigate to"),
                "waitUntil": _string("When to consider navigation finished", enum=["load", "domcontentloaded", "networkidle"]),
                "timeoutMs": _number("Maximum time to wait in milliseconds", minimum=0, maximum=120000),
            },
            ["url"],
        ),
        _tool(
            "mcp__browser__screenshot",
            "Take a screenshot of the current page or of one element, returned as a PNG image.",
            {
                "selector": _string("CSS selector of the element to capture; the whole viewport when omitted"),
                "fullPage": _boolean("Capture the full scrollable page instead of the viewport"),
                "width": _number("Viewport width in CSS pixels", minimum=320, maximum=3840),
                "height": _number("Viewport height in CSS pixels", minimum=240, maximum=2160),
            },
            [],
        ),
        _tool(
            "mcp__memory__store",
            "Store a fact in the long-term project memory so that later sessions can recall it. Facts are short sentences "
            "with optional tags; storing a fact that is already known updates its timestamp instead of duplicating it.",
            {
                "fact": _string("The fact to remember, as one self-contained sentence"),
                "tags": {"type": "array", "items": {"type": "string", "pattern": "^[a-z0-9-]+$"}, "description": "Lower-case tags"},
                "expiresInDays": {"type": "integer", "minimum": 1, "description": "Forget the fact after this many days"},
            },
            ["fact"],
        ),
    ]


CACHE_SOURCE = '''\
"""Per-process cache of stock levels, so that hot SKUs do not hit Postgres on every request."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from inventory.models import StockLevel

logger = structlog.get_logger(__name__)

DEFAULT_TTL_SECONDS = 30.0
DEFAULT_MAX_ENTRIES = 10_000


@dataclass
class _Entry:
    value: StockLevel
    expires_at: float
    hits: int = 0


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    expirations: int = 0
    loads_in_flight: dict[str, int] = field(default_factory=dict)

    @property
    def hit_ratio(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


class StockCache:
    """An LRU cache with a time-to-live, safe to share between tasks of one event loop.

    Concurrent misses for the same SKU are coalesced: only the first caller runs the
    loader, the others await its result.
    """

    def __init__(
        self,
        loader: Callable[[str], Awaitable[StockLevel]],
        ttl: float = DEFAULT_TTL_SECONDS,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl <= 0:
            raise ValueError(f"ttl must be positive, got {ttl!r}")
        self._loader = loader
        self._ttl = ttl
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._pending: dict[str, asyncio.Future[StockLevel]] = {}
        self.stats = CacheStats()

    async def get(self, sku: str) -> StockLevel:
        now = self._clock()
        entry = self._entries.get(sku)
        if entry is not None:
            if entry.expires_at > now:
                self._entries.move_to_end(sku)
                entry.hits += 1
                self.stats.hits += 1
                return entry.value
            del self._entries[sku]
            self.stats.expirations += 1
        self.stats.misses += 1
        if (pending := self._pending.get(sku)) is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[StockLevel] = asyncio.get_running_loop().create_future()
        self._pending[sku] = future
        try:
            value = await self._loader(sku)
        except Exception as error:
            future.set_exception(error)
            logger.warning("stock_cache_load_failed", sku=sku, error=str(error))
            raise
        else:
            future.set_result(value)
            self._store(sku, value, now)
            return value
        finally:
            del self._pending[sku]

    def invalidate(self, sku: str) -> bool:
        """Forget one SKU; True if it was cached. Called after every reservation."""
        return self._entries.pop(sku, None) is not None

    def _store(self, sku: str, value: StockLevel, now: float) -> None:
        self._entries[sku] = _Entry(value, expires_at=now + self._ttl)
        self._entries.move_to_end(sku)
        while len(self._entries) > self._max_entries:
            evicted, _ = self._entries.popitem(last=False)
            self.stats.evictions += 1
            logger.debug("stock_cache_evicted", sku=evicted)
'''

TEST_SOURCE = '''\
import asyncio

import pytest

from inventory.cache import StockCache
from inventory.models import StockLevel


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def level(sku: str, on_hand: int = 5) -> StockLevel:
    return StockLevel(sku=sku, on_hand=on_hand, reserved=0)


@pytest.mark.asyncio
async def test_second_get_is_a_hit() -> None:
    calls: list[str] = []

    async def loader(sku: str) -> StockLevel:
        calls.append(sku)
        return level(sku)

    cache = StockCache(loader, ttl=10, clock=FakeClock())
    assert await cache.get("SKU-1") == level("SKU-1")
    assert await cache.get("SKU-1") == level("SKU-1")
    assert calls == ["SKU-1"]
    assert cache.stats.hit_ratio == 0.5


@pytest.mark.asyncio
async def test_entry_expires_after_ttl() -> None:
    clock = FakeClock()
    cache = StockCache(lambda sku: asyncio.sleep(0, level(sku)), ttl=10, clock=clock)
    await cache.get("SKU-2")
    clock.now += 10.5
    await cache.get("SKU-2")
    assert cache.stats.expirations == 1
    assert cache.stats.misses == 2


@pytest.mark.asyncio
async def test_concurrent_misses_share_one_load() -> None:
    started = asyncio.Event()
    release = asyncio.Event()
    calls = 0

    async def loader(sku: str) -> StockLevel:
        nonlocal calls
        calls += 1
        started.set()
        await release.wait()
        return level(sku, on_hand=calls)

    cache = StockCache(loader, ttl=10, clock=FakeClock())
    first = asyncio.create_task(cache.get("SKU-3"))
    await started.wait()
    second = asyncio.create_task(cache.get("SKU-3"))
    release.set()
    assert (await first).on_hand == (await second).on_hand == 1
    assert calls == 1
'''

TS_SOURCE = """\
import { createHash } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";

export interface RateLimitOptions {
  windowMs: number;
  maxRequests: number;
  keyPrefix?: string;
  trustForwardedFor?: boolean;
}

export interface RateLimitDecision {
  allowed: boolean;
  remaining: number;
  resetAtEpochMs: number;
}

type Bucket = { count: number; windowStartedAt: number };

export class SlidingWindowLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly options: RateLimitOptions, private readonly now: () => number = Date.now) {
    if (options.windowMs <= 0 || options.maxRequests <= 0) {
      throw new RangeError(`invalid rate limit: ${JSON.stringify(options)}`);
    }
  }

  clientKey(headers: IncomingHttpHeaders, remoteAddress: string | undefined): string {
    const forwarded = this.options.trustForwardedFor ? headers["x-forwarded-for"] : undefined;
    const firstHop = Array.isArray(forwarded) ? forwarded[0] : forwarded?.split(",")[0]?.trim();
    const source = firstHop || remoteAddress || "unknown";
    const digest = createHash("sha256").update(source).digest("hex").slice(0, 16);
    return `${this.options.keyPrefix ?? "rl"}:${digest}`;
  }

  check(key: string): RateLimitDecision {
    const now = this.now();
    const bucket = this.buckets.get(key);
    if (!bucket || now - bucket.windowStartedAt >= this.options.windowMs) {
      this.buckets.set(key, { count: 1, windowStartedAt: now });
      return { allowed: true, remaining: this.options.maxRequests - 1, resetAtEpochMs: now + this.options.windowMs };
    }
    bucket.count += 1;
    const remaining = Math.max(0, this.options.maxRequests - bucket.count);
    return {
      allowed: bucket.count <= this.options.maxRequests,
      remaining,
      resetAtEpochMs: bucket.windowStartedAt + this.options.windowMs,
    };
  }

  pruneExpired(): number {
    const now = this.now();
    let removed = 0;
    for (const [key, bucket] of this.buckets) {
      if (now - bucket.windowStartedAt >= this.options.windowMs) {
        this.buckets.delete(key);
        removed += 1;
      }
    }
    return removed;
  }
}
"""


MODELS_SOURCE = '''\
"""Value objects shared by the API, the cache and the warehouse sync. No database types here."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

RESERVATION_TTL = timedelta(minutes=15)


class ReservationState(enum.StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class StockLevel:
    sku: str
    on_hand: int
    reserved: int = 0

    @property
    def available(self) -> int:
        return max(0, self.on_hand - self.reserved)

    def reserve(self, quantity: int) -> StockLevel:
        if quantity <= 0:
            raise ValueError(f"quantity must be positive, got {quantity}")
        if quantity > self.available:
            raise InsufficientStock(self.sku, requested=quantity, available=self.available)
        return replace(self, reserved=self.reserved + quantity)


@dataclass(frozen=True, slots=True)
class Reservation:
    id: str
    sku: str
    quantity: int
    tenant: str
    state: ReservationState = ReservationState.PENDING
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def expires_at(self) -> datetime:
        return self.created_at + RESERVATION_TTL

    def is_expired(self, now: datetime) -> bool:
        return self.state is ReservationState.PENDING and now >= self.expires_at


class InsufficientStock(Exception):
    def __init__(self, sku: str, requested: int, available: int) -> None:
        super().__init__(f"{sku}: requested {requested}, only {available} available")
        self.sku = sku
        self.requested = requested
        self.available = available
'''

WEB_PAGE = """\
# Coroutines and tasks: shielding from cancellation

`asyncio.shield(aw)` protects an awaitable from being cancelled. If `aw` is a coroutine it \
is scheduled as a task automatically. The statement `res = await shield(something())` is \
equivalent to `res = await something()` except that if the coroutine containing it is \
cancelled, the task running `something()` is not. From the point of view of \
`something()`, the cancellation did not happen, although its caller is still cancelled, \
so the `await` expression still raises `CancelledError`.

If `something()` is cancelled by other means (that is, from within itself), that would \
also cancel `shield()`. To ignore cancellation completely, combine `shield()` with a \
`try/except` clause:

```python
task = asyncio.create_task(something())
try:
    res = await shield(task)
except CancelledError:
    res = None
```

Important: save a reference to tasks passed to this function, to avoid a task \
disappearing mid-execution. The event loop only keeps weak references to tasks; a task \
that is not referenced elsewhere may be garbage collected at any time, even before it is \
done.

## Futures shared between waiters
A future can be awaited by any number of coroutines; all of them resume when its result \
is set. Setting a result or an exception twice raises `InvalidStateError`, and a future \
whose exception is never retrieved logs "Future exception was never retrieved" when it is \
garbage collected. When several waiters share one future, it is usual that exactly one of \
them owns it: the owner sets the outcome, and only the owner cleans up any registry that \
maps keys to pending futures.
"""

def numbered(source: str, first: int = 1) -> str:
    """Source as a Read tool shows it: right-aligned line numbers, a tab, the line."""
    return "\n".join(f"{number:6d}\t{line}" for number, line in enumerate(source.splitlines(), first))


def _sha(seed: str, length: int = 40) -> str:
    return hashlib.sha1(seed.encode()).hexdigest()[:length]


def git_log(count: int) -> str:
    rng = random.Random(7)
    subjects = [
        "Fix off-by-one in reservation expiry",
        "Add structured logging to the sync worker",
        "Refactor StockLevel into a frozen dataclass",
        "Retry warehouse calls on 502 and 503",
        "Bump ruff to 0.4.4",
        "Cache negative lookups for unknown SKUs",
        "Move tenant resolution into middleware",
        "Document the cache invalidation rules",
        "Speed up the bulk import by batching inserts",
        "Handle daylight saving time in the nightly report",
    ]
    authors = ["Ana Ribeiro", "Tomás Novák", "Priya Raman", "Jonas Weber", "Mei Lin"]
    lines = []
    for index in range(count):
        day = 28 - index % 27
        lines.append(
            f"commit {_sha(f'commit{index}')}\n"
            f"Author: {rng.choice(authors)} <dev{index % 5}@example.org>\n"
            f"Date:   Tue May {day} {rng.randint(8, 19):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d} 2025 +0200\n\n"
            f"    {rng.choice(subjects)}\n"
        )
    return "\n".join(lines)


def ls_listing(count: int) -> str:
    rng = random.Random(11)
    stems = ["cache", "models", "reservations", "sync", "api", "settings", "tenants", "metrics", "errors", "db", "pricing", "events"]
    lines = [f"total {count * 8}", "drwxr-xr-x  9 dev dev  4096 Jun 14 09:12 .", "drwxr-xr-x 31 dev dev  4096 Jun  2 17:40 .."]
    for index in range(count):
        stem = stems[index % len(stems)]
        name = f"{stem}_{index // len(stems)}.py" if index >= len(stems) else f"{stem}.py"
        size, day, hour, minute = rng.randint(200, 48000), rng.randint(1, 14), rng.randint(0, 23), rng.randint(0, 59)
        lines.append(f"-rw-r--r--  1 dev dev {size:5d} Jun {day:2d} {hour:02d}:{minute:02d} {name}")
    return "\n".join(lines)


PYTEST_OUTPUT = """\
============================= test session starts ==============================
platform linux -- Python 3.12.3, pytest-8.2.1, pluggy-1.5.0
rootdir: /home/dev/src/inventory-service
configfile: pyproject.toml
plugins: asyncio-0.23.7, cov-5.0.0
asyncio: mode=Mode.STRICT
collected 148 items

tests/test_api.py ...........................                            [ 18%]
tests/test_cache.py ..F.                                                 [ 20%]
tests/test_models.py ..................                                  [ 33%]
tests/test_reservations.py ..................................            [ 56%]
tests/test_sync.py ..........................................            [ 84%]
tests/test_tenants.py .......................                            [100%]

=================================== FAILURES ===================================
____________________ test_concurrent_misses_share_one_load _____________________

    @pytest.mark.asyncio
    async def test_concurrent_misses_share_one_load() -> None:
        started = asyncio.Event()
        release = asyncio.Event()
        calls = 0
    ...
        release.set()
>       assert (await first).on_hand == (await second).on_hand == 1

tests/test_cache.py:58:
_ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _

self = <inventory.cache.StockCache object at 0x7f3a2c1d5e10>, sku = 'SKU-3'

    async def get(self, sku: str) -> StockLevel:
        now = self._clock()
        entry = self._entries.get(sku)
    ...
        if (pending := self._pending.get(sku)) is not None:
>           return await asyncio.shield(pending)
E           KeyError: 'SKU-3'

src/inventory/cache.py:81: KeyError
---------- coverage: platform linux, python 3.12.3-final-0 -----------
Name                                Stmts   Miss  Cover
-------------------------------------------------------
src/inventory/__init__.py               2      0   100%
src/inventory/api.py                  214     11    95%
src/inventory/cache.py                 68      4    94%
src/inventory/db/session.py            41      3    93%
src/inventory/models.py                57      0   100%
src/inventory/reservations.py         166      9    95%
src/inventory/sync.py                 139     17    88%
src/inventory/tenants.py               73      2    97%
-------------------------------------------------------
TOTAL                                 760     46    94%

=========================== short test summary info ============================
FAILED tests/test_cache.py::test_concurrent_misses_share_one_load - KeyError: 'SKU-3'
======================== 1 failed, 147 passed in 4.21s =========================
"""

CHECKS_PASSED = "148 passed in 4.02s\nAll checks passed!\nSuccess: no issues found in 23 source files"

GREP_OUTPUT = """\
src/inventory/cache.py:62:        self._pending: dict[str, asyncio.Future[StockLevel]] = {}
src/inventory/cache.py:78:        if (pending := self._pending.get(sku)) is not None:
src/inventory/cache.py:81:        self._pending[sku] = future
src/inventory/cache.py:94:            del self._pending[sku]
src/inventory/reservations.py:140:        await self._cache.invalidate(reservation.sku)
src/inventory/sync.py:57:    pending = [sku for sku in batch if sku not in seen]
src/inventory/sync.py:203:            logger.info("sync_pending", count=len(pending), tenant=tenant.slug)
tests/test_cache.py:41:async def test_concurrent_misses_share_one_load() -> None:"""

THINKING = """\
The failure is a KeyError on self._pending[sku] in the finally block. Walking through the \
concurrent case: the first task creates the future, stores it in _pending and awaits the \
loader. The second task finds the pending future and awaits asyncio.shield(pending). When \
the loader returns, the first task sets the result, stores the value and then the finally \
block deletes _pending[sku]. That part is fine on its own.

But the test's loader sets `started` before it awaits `release`, and the second get() runs \
while the first is suspended, so the second call also counts as a miss and goes through the \
`pending` branch; it never touches _pending. So where does the second deletion come from? \
Looking again at line 81: the traceback points at `return await asyncio.shield(pending)`, \
not the finally block. The shown source is stale: the working copy has an extra \
`self._pending.pop(sku)` in the except branch that I added earlier, and the test's loader \
does not raise... no, wait. The KeyError comes from the first task's finally block after the \
exception path has already popped it? The loader does not raise, so that is not it either.

The simplest explanation: `_store` is called before `del self._pending[sku]`, and `_store` \
can evict entries; that does not touch _pending. I should re-read the file on disk rather \
than guess, then reproduce with the single test and -x. Plan: read cache.py fully, run the \
one failing test with -x -vv, fix, then run the whole suite and the linters."""


def glob_result(count: int) -> str:
    rng = random.Random(13)
    folders = ["src/inventory", "src/inventory/db", "src/inventory/api", "tests", "tests/integration", "scripts", "migrations/versions"]
    stems = ["cache", "models", "reservations", "sync", "routes", "schemas", "session", "tenants", "pricing", "fixtures", "conftest"]
    suffixes = ["", "_v2", "_test", "_utils"]
    paths = {f"/home/dev/src/inventory-service/{rng.choice(folders)}/{rng.choice(stems)}{rng.choice(suffixes)}.py" for _ in range(count)}
    return "\n".join(sorted(paths))


def pytest_verbose(count: int) -> str:
    """`pytest -v` output: one line per test, the kind of tool result that fills a context."""
    rng = random.Random(17)
    files = ["tests/test_api.py", "tests/test_cache.py", "tests/test_reservations.py", "tests/test_sync.py", "tests/test_tenants.py"]
    verbs = ["creates", "rejects", "expires", "confirms", "cancels", "retries", "caches", "invalidates", "paginates", "validates"]
    nouns = ["reservation", "stock_level", "unknown_sku", "tenant_header", "negative_quantity", "expired_token", "bulk_import", "warehouse_timeout"]
    lines = [PYTEST_OUTPUT.split("collected")[0] + f"collected {count} items\n"]
    for index in range(count):
        name = f"test_{rng.choice(verbs)}_{rng.choice(nouns)}"
        if rng.random() < 0.3:
            name += f"[{rng.choice(['sqlite', 'postgres'])}-{rng.randint(1, 50)}]"
        lines.append(f"{files[index * len(files) // count]}::{name} PASSED{'':<8}[{(index + 1) * 100 // count:3d}%]")
    lines.append(f"\n============================= {count} passed in {rng.uniform(3, 9):.2f}s ==============================")
    return "\n".join(lines)


def _turn(role: str, *blocks: dict[str, Any]) -> dict[str, Any]:
    return {"role": role, "content": list(blocks)}


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _call(call_id: str, name: str, **arguments: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": f"toolu_{call_id}", "name": name, "input": arguments}


def _result(call_id: str, content: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": f"toolu_{call_id}", "content": content, **extra}


def claude_code_request() -> dict[str, Any]:
    """A mid-session request like the ones Claude Code sends (about 80 KB of JSON)."""
    project = "/home/dev/src/inventory-service"
    reminder = (
        "<system-reminder>\nAs you answer the user's questions, you can use the following context:\n"
        "# claudeMd\nCodebase and user instructions are shown below. Be sure to adhere to these instructions.\n\n"
        f"Contents of {project}/CLAUDE.md (project instructions, checked into the codebase):\n\n{PROJECT_NOTES}\n"
        "</system-reminder>"
    )
    todos = [
        {"content": "Reproduce the failing cache test", "status": "completed", "activeForm": "Reproducing the failing cache test"},
        {"content": "Fix the pending-load bookkeeping in StockCache.get", "status": "in_progress", "activeForm": "Fixing the pending-load bookkeeping"},
        {"content": "Add a test for a loader that raises", "status": "pending", "activeForm": "Adding a test for a failing loader"},
        {"content": "Run the full suite, ruff and mypy", "status": "pending", "activeForm": "Running the full suite and linters"},
    ]
    new_finally = (
        "        finally:\n"
        "            # Only the task that started the load may clear it: a waiter that arrived\n"
        "            # after the loader finished must not remove a newer pending load.\n"
        "            if self._pending.get(sku) is future:\n"
        "                del self._pending[sku]"
    )
    edited = "The file {project}/src/inventory/cache.py has been updated. Here's the result of running `cat -n` on a snippet of the edited file:\n"
    messages = [
        _turn(
            "user",
            _text(reminder),
            _text("The cache test for concurrent misses started failing after my last change. Can you find out why and fix it? Don't change the test unless it is wrong."),
        ),
        _turn(
            "assistant",
            {"type": "thinking", "thinking": THINKING, "signature": "EqQBCkYIBBgCIkD" + "x" * 120},
            _text("I'll look at the cache, its test and the test run."),
            _call("01A", "TodoWrite", todos=todos),
            _call("01B", "Read", file_path=f"{project}/src/inventory/cache.py"),
            _call("01C", "Read", file_path=f"{project}/tests/test_cache.py"),
            _call("01D", "Bash", command=f"cd {project} && python -m pytest -q --cov=src/inventory", description="Run the test suite with coverage"),
        ),
        _turn(
            "user",
            _result("01A", "Todos have been modified successfully. Ensure that you continue to use the todo list to track your progress. Please proceed with the current tasks if applicable"),
            _result("01B", numbered(CACHE_SOURCE)),
            _result("01C", [_text(numbered(TEST_SOURCE))]),
            _result("01D", PYTEST_OUTPUT, is_error=True),
        ),
        _turn(
            "assistant",
            _text("The traceback points at the pending-load bookkeeping. Let me see every place that touches `_pending` and the recent history of the file."),
            _call("02A", "Grep", pattern="pending", path=project, output_mode="content", **{"-n": True}),
            _call("02B", "Bash", command="git log -n 12 -- src/inventory/cache.py", description="Show recent commits touching the cache"),
            _call("02C", "LS", path=f"{project}/src/inventory"),
            _call("02D", "Glob", pattern="**/*.py", path=project),
            _call("02E", "Read", file_path=f"{project}/src/inventory/models.py"),
            _call("02F", "WebFetch", url="https://docs.python.org/3/library/asyncio-task.html#shielding-from-cancellation", prompt="What exactly does asyncio.shield guarantee, and who should clean up a shared future?"),
        ),
        _turn(
            "user",
            _result("02A", GREP_OUTPUT),
            _result("02B", git_log(12)),
            _result("02C", ls_listing(36)),
            _result("02D", glob_result(70)),
            _result("02E", numbered(MODELS_SOURCE)),
            _result("02F", WEB_PAGE),
        ),
        _turn(
            "assistant",
            _text("Found it: a waiter that arrives after the load finished can delete a newer pending entry. Fixing the `finally` block so only the owner clears it, and checking the rate limiter the API wraps around the cache."),
            _call("03A", "Edit", file_path=f"{project}/src/inventory/cache.py", old_string="        finally:\n            del self._pending[sku]", new_string=new_finally),
            _call("03B", "Read", file_path="/home/dev/src/storefront-gateway/src/rateLimit.ts"),
        ),
        _turn(
            "user",
            _result("03A", edited.format(project=project) + numbered(CACHE_SOURCE.split("\n\n\n")[-1], 70)),
            _result("03B", numbered(TS_SOURCE)),
        ),
        _turn(
            "assistant",
            _text("Fixed. The limiter is unrelated. Running the suite again."),
            _call("04A", "Bash", command="python -m pytest -q && ruff check && mypy src", description="Run tests, ruff and mypy"),
        ),
        _turn("user", _result("04A", PYTEST_OUTPUT.replace("F.", "..").split("=== FAILURES")[0] + CHECKS_PASSED)),
        _turn(
            "assistant",
            _text("All green. Listing the individual tests once, to make sure the new bookkeeping did not skip any parametrised cases."),
            _call("05A", "Bash", command="python -m pytest -v -p no:cacheprovider", description="List every test with its result"),
        ),
        _turn(
            "user",
            _result("05A", pytest_verbose(120)),
            _text("Great. Now also add a test for a loader that raises, and tell me whether the old behaviour could leak memory in production."),
        ),
    ]
    return {
        "model": "claude-sonnet-4-20250514",
        "max_tokens": 32000,
        "stream": True,
        "system": [
            _text("You are Claude Code, Anthropic's official CLI for Claude."),
            {**_text(SYSTEM_PROMPT), "cache_control": {"type": "ephemeral"}},
        ],
        "tools": tool_definitions(),
        "messages": messages,
        "thinking": {"type": "enabled", "budget_tokens": 16000},
        "metadata": {"user_id": "user_" + _sha("user", 64)},
    }


# ---------------------------------------------------------------------------
# Corpus: separate pieces
# ---------------------------------------------------------------------------

PROSE = """\
Every old harbour town has a building that nobody can quite explain. In ours it is the \
weigh house, a narrow brick hall with a clock that has been wrong for as long as anyone \
remembers. Fishermen once brought their catch there to be weighed before it was sold, and \
the scales, long since removed, left four dark rectangles on the floorboards that the \
cleaners still sweep around out of habit.

The town council has tried three times to find a use for it. First it was a museum of \
local history, which closed after a winter in which it had eleven visitors, seven of them \
the same retired schoolteacher. Then it became a café, but the kitchen could not be \
ventilated without cutting into a listed wall, so the menu shrank to soup and sandwiches \
and the owners moved to a bigger place on the square. The third attempt, a co-working \
space with fast internet and long tables, is still there, although most days the only \
sound is the clock, ticking patiently towards a time it will never show correctly.

What interests me is not the building's failure to become anything, but its refusal to \
disappear. A developer offered to buy it in the nineties and replace it with flats; the \
offer was generous, the council was short of money, and the vote was expected to pass \
easily. It failed by a single vote, cast by a councillor who later admitted that she had \
no strong opinion about architecture. She simply liked walking past the clock on her way \
to work, she said, and checking her watch against it, and feeling pleased that at least \
one thing in town was reliably, predictably wrong.

There is a lesson in that, though I am not sure it is the one the council would draw. \
Places survive because someone is fond of them for reasons that would never fit into a \
planning report. The weigh house has no purpose, and perhaps that is its purpose: a \
reminder that a town is not only a machine for living in, but also a collection of small, \
irrational attachments that nobody would design and nobody wants to lose.
"""

PYTHON_SOURCE = '''\
#!/usr/bin/env python3
"""Summarise web server access logs: requests per status, slowest paths, busiest clients."""

from __future__ import annotations

import argparse
import gzip
import re
import statistics
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path

LINE = re.compile(
    r'(?P<client>\\S+) \\S+ \\S+ \\[(?P<time>[^\\]]+)\\] "(?P<method>[A-Z]+) (?P<path>\\S+) [^"]*" '
    r"(?P<status>\\d{3}) (?P<size>\\d+|-) (?P<duration>\\d+\\.\\d+)"
)


def open_log(path: Path) -> Iterator[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
        yield from handle


def parse(lines: Iterable[str]) -> Iterator[dict[str, str]]:
    for line in lines:
        if match := LINE.match(line):
            yield match.groupdict()


def summarise(records: Iterable[dict[str, str]], top: int) -> str:
    statuses: Counter[str] = Counter()
    clients: Counter[str] = Counter()
    durations: defaultdict[str, list[float]] = defaultdict(list)
    for record in records:
        statuses[record["status"]] += 1
        clients[record["client"]] += 1
        path = record["path"].split("?", 1)[0]
        durations[path].append(float(record["duration"]))
    if not statuses:
        return "no requests found"
    lines = [f"{sum(statuses.values())} requests"]
    for status, count in sorted(statuses.items()):
        lines.append(f"  {status}: {count}")
    slowest = sorted(durations.items(), key=lambda item: statistics.median(item[1]), reverse=True)[:top]
    lines.append(f"slowest {len(slowest)} paths by median duration:")
    for path, values in slowest:
        p95 = statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]
        lines.append(f"  {path:<40} median {statistics.median(values):7.3f}s  p95 {p95:7.3f}s  n={len(values)}")
    lines.append(f"busiest {top} clients:")
    lines.extend(f"  {client:<15} {count}" for client, count in clients.most_common(top))
    return "\\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("logs", nargs="+", type=Path, help="access log files (.log or .log.gz)")
    parser.add_argument("--top", type=int, default=10, help="how many paths and clients to list")
    args = parser.parse_args(argv)
    missing = [str(path) for path in args.logs if not path.exists()]
    if missing:
        print(f"not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    lines = (line for path in args.logs for line in open_log(path))
    print(summarise(parse(lines), args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
'''

CJK = """\
我们小区门口有一家开了二十多年的修鞋铺。老板姓王，每天早上七点准时开门，晚上天黑了才收摊。\
铺子很小，只放得下一张工作台和两把凳子，墙上挂满了各种颜色的鞋带和皮料。\
现在愿意修鞋的人越来越少，大家的鞋坏了往往直接买新的，可王师傅说，总有人舍不得一双穿惯了的鞋。\
他修好的鞋，鞋底比原来还结实，价钱却只有新鞋的十分之一。\
去年冬天，我拿去一双磨破了后跟的皮靴，他看了一眼就说：“这双鞋做工好，值得修。”三天后取鞋的时候，\
他还顺手给我上了一层油，说这样雪天不容易渗水。

駅前の小さな本屋は、今年の春で五十周年を迎えた。店主の祖父が始めた店で、今は三代目の彼女が一人で切り盛りしている。\
大きな書店やネット通販に押されて、売り上げは年々減っているという。\
それでも彼女は、毎月手書きのおすすめカードを百枚近く書き、常連客の好みを覚えて新刊を取り置きしておく。\
「本を売っているというより、本との出会いを売っているんです」と彼女は笑った。
"""


def json_document() -> str:
    """An API response like the ones tools return: nested objects, ids, timestamps, prices."""
    rng = random.Random(3)
    products = ["Trail running shoe", "Merino wool socks", "Rain shell jacket", "Insulated bottle", "Headlamp 400lm", "Dry bag 20 L"]
    orders = []
    for index in range(14):
        items = [
            {
                "sku": f"SKU-{rng.randint(10000, 99999)}",
                "name": rng.choice(products),
                "quantity": rng.randint(1, 4),
                "unit_price_cents": rng.choice([1299, 2450, 8900, 15999, 3475]),
                "warehouse": rng.choice(["AMS-1", "BER-2", "MAD-1"]),
            }
            for _ in range(rng.randint(1, 3))
        ]
        orders.append(
            {
                "id": f"ord_{_sha(f'order{index}', 24)}",
                "created_at": f"2025-06-{rng.randint(1, 13):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z",
                "status": rng.choice(["paid", "reserved", "shipped", "cancelled"]),
                "customer": {
                    "id": f"cus_{_sha(f'customer{index}', 14)}",
                    "country": rng.choice(["NL", "DE", "ES", "FR"]),
                    "returning": rng.random() > 0.5,
                },
                "items": items,
                "total_cents": sum(item["quantity"] * item["unit_price_cents"] for item in items),
                "shipping": None
                if rng.random() > 0.6
                else {"carrier": rng.choice(["DHL", "PostNL"]), "tracking": f"JVGL{rng.randint(10**11, 10**12)}"},
            }
        )
    return json.dumps({"data": orders, "has_more": True, "next_cursor": _sha("cursor", 32)}, indent=2)


def minified_line() -> str:
    """One long line of minified JavaScript, as bundlers emit it."""
    rng = random.Random(5)
    names = [chr(c) for c in range(ord("a"), ord("z") + 1)] + ["e", "t", "n", "r", "Ae", "Qe", "$t", "_n"]
    parts = []
    for index in range(60):
        a, b, c = rng.sample(names, 3)
        parts.append(
            rng.choice(
                [
                    f'function {a}{index}({b},{c}){{return {b}&&{b}.length>{index % 7}?{b}.map(function({a}){{return {a}*{c}}}):[]}}',
                    f'var {a}=document.querySelector("#app-{index}"),{b}={a}?{a}.getBoundingClientRect():null;',
                    f'{a}.prototype.{b}{index}=function(){{this._{c}=Object.assign({{}},this._{c},{{ready:!0,t:{rng.randint(100, 9999)}}})}};',
                    f'if(typeof {a}==="undefined"){{throw new TypeError("Expected {a} to be defined, got "+typeof {a})}}',
                    f'const {a}{index}=({b},{c}=0)=>{b}.reduce((x,y)=>x+y.value*{c},{rng.randint(0, 99)});',
                    f'window.addEventListener("resize",function(){{clearTimeout({a});{a}=setTimeout({b},{rng.randint(50, 400)})}});',
                ]
            )
        )
    return "".join(parts)


def hex_log() -> str:
    """Log lines full of ids and hashes, which BPE vocabularies split into many short pieces."""
    rng = random.Random(9)
    lines = []
    for index in range(40):
        request_id = _sha(f"req{index}", 32)
        uuid = f"{request_id[:8]}-{request_id[8:12]}-4{request_id[13:16]}-a{request_id[17:20]}-{_sha(f'u{index}', 12)}"
        lines.append(
            f"2025-06-14T09:{index // 60:02d}:{index % 60:02d}.{rng.randint(0, 999):03d}Z INFO request_id={uuid} "
            f"trace={_sha(f'trace{index}', 16)} sha={_sha(f'blob{index}')} bytes={rng.randint(100, 99999)} latency_ms={rng.random() * 900:.2f}"
        )
    return "\n".join(lines)


def pieces() -> dict[str, str]:
    """Separate texts of one kind each, to see where the heuristic is weak."""
    return {
        "English prose": PROSE,
        "Python source": PYTHON_SOURCE,
        "TypeScript source": TS_SOURCE,
        "JSON (indented)": json_document(),
        "CJK paragraph": CJK,
        "Minified JS line": minified_line(),
        "Shell output": PYTEST_OUTPUT + "\n" + ls_listing(30),
        "Hex ids and hashes": hex_log(),
    }


# ---------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------


def comparisons(count: Counter) -> list[tuple[str, int, int]]:
    """(name, estimate, reference) for the request, its parts and every piece."""
    request = claude_code_request()
    rows = [("Claude Code request (total)", token_estimate.estimate_input_tokens(request),
             reference_request_tokens(request, count))]
    for name, part in (
        ("  system prompt", {"system": request["system"]}),
        ("  24 tool definitions", {"tools": request["tools"]}),
        ("  message history", {"messages": request["messages"]}),
    ):
        rows.append((name, token_estimate.estimate_input_tokens(part), reference_request_tokens(part, count)))
    for name, text in pieces().items():
        rows.append((name, token_estimate.estimate_text_tokens(text), count(text)))
    return rows


def time_per_request(repeat: int = 7, number: int = 50) -> tuple[float, float, int]:
    """Best-of-`repeat` seconds per estimate_input_tokens call, cold and warm, and the JSON size.

    Cold forgets the remembered text costs before every call (a request never seen before);
    warm keeps them (the next turn of a session, whose history is unchanged).
    """
    request = claude_code_request()
    size = len(json.dumps(request).encode())

    def best(forget: bool) -> float:
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            for _ in range(number):
                if forget:
                    token_estimate._MEMO.clear()
                token_estimate.estimate_input_tokens(request)
            times.append((time.perf_counter() - start) / number)
        return min(times)

    return best(forget=True), best(forget=False), size


def main() -> int:
    cold, warm, size = time_per_request()
    timing = (
        f"estimate_input_tokens on the {size / 1024:.0f} KB Claude Code request (best of 7 x 50 calls): "
        f"{cold * 1e3:.2f} ms cold, {warm * 1e3:.2f} ms with its history already counted"
    )
    reference = load_reference()
    if reference is None:
        target = _default_tokenizer_dir()
        print(INSTALL_HINT.format(python=sys.executable, target=target))
        print()
        print(timing)
        return 0
    count, description = reference
    print(f"Reference: {description}\n")
    rows = comparisons(count)
    width = max(len(name) for name, _, _ in rows)
    print(f"{'text':<{width}}  {'estimate':>8}  {'tokenizer':>9}  {'ratio':>6}")
    for name, estimate, actual in rows:
        print(f"{name:<{width}}  {estimate:>8}  {actual:>9}  {estimate / actual:>6.3f}")
    separate = [(e, a) for name, e, a in rows if not name.startswith(" ") and "request" not in name]
    errors = [abs(e - a) / a for e, a in separate]
    total_estimate = sum(e for e, _ in separate)
    total_actual = sum(a for _, a in separate)
    print()
    print(f"pieces: mean |error| {sum(errors) / len(errors):.1%}, worst {max(errors):.1%}, summed {total_estimate / total_actual - 1:+.1%}")
    print(f"request: {rows[0][1] / rows[0][2] - 1:+.1%}")
    print(timing)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env bash
# modelmux for development, from a checkout:
#   ./dev.sh serve [modelmux serve args...]   the gateway
#   ./dev.sh test  [pytest args...]           the test suite
# Both first make .venv (Python >= 3.12, modelmux editable with its test extras).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VENV=$REPO/.venv
STAMP=$VENV/.modelmux-installed  # newer than pyproject.toml and setup.py: the install is current
CLAUDE_PREFIX=$REPO/.cache/claude-code
# The Claude Code whose variables docs/claude-code.md describes (VERIFIED_VERSION in
# modelmux/cli/claude_env.py); tests/test_claude_code_limits.py fails on any other.
CLAUDE_CODE_VERSION=2.1.197
NEEDS_PYTHON="modelmux needs Python 3.12 or newer; install it (e.g. \`pyenv install 3.12\`, your OS package python3.12, or python.org) and re-run"

usage() {
    echo "usage: ./dev.sh serve [modelmux serve args...] | ./dev.sh test [pytest args...]"
}

say() {
    echo "dev.sh: $*" >&2
}

# Whether the command "$@" is a Python >= 3.12 that runs: pyenv shims exist for
# versions that are not active and fail only when run.
python_ok() {
    "$@" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1
}

# Sets PYTHON to the first usable interpreter (a command with its arguments).
find_python() {
    local candidate version root
    for candidate in python3.14 python3.13 python3.12; do
        if python_ok "$candidate"; then PYTHON=("$candidate"); return 0; fi
    done
    for version in -3.14 -3.13 -3.12; do  # the py launcher of Python for Windows (Git Bash)
        if python_ok py "$version"; then PYTHON=(py "$version"); return 0; fi
    done
    root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
    local installed=("$root"/versions/3.1[2-9]*/bin/python)
    local i
    for ((i = ${#installed[@]} - 1; i >= 0; i--)); do  # the glob sorts oldest first
        if python_ok "${installed[i]}"; then PYTHON=("${installed[i]}"); return 0; fi
    done
    for candidate in python3 python; do
        if python_ok "$candidate"; then PYTHON=("$candidate"); return 0; fi
    done
    return 1
}

venv_bin() {
    if [[ -d $VENV/Scripts && ! -d $VENV/bin ]]; then echo "$VENV/Scripts"; else echo "$VENV/bin"; fi
}

ensure_venv() {
    if [[ -d $VENV ]] && ! python_ok "$(venv_bin)/python"; then
        say ".venv has no working Python >= 3.12; recreating it"
        rm -rf "$VENV"
    fi
    if [[ ! -d $VENV ]]; then
        local PYTHON
        if ! find_python; then
            echo "$NEEDS_PYTHON" >&2
            exit 1
        fi
        say "creating .venv with $("${PYTHON[@]}" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
        if ! "${PYTHON[@]}" -m venv "$VENV"; then
            rm -rf "$VENV"
            exit 1
        fi
    fi
    if [[ -f $STAMP && $STAMP -nt $REPO/pyproject.toml && $STAMP -nt $REPO/setup.py ]]; then
        return 0
    fi
    say "installing modelmux (editable) and its test dependencies into .venv"
    # One resolution for everything: mitmproxy pins typing-extensions tightly, and a
    # second install could move what the first one chose.
    (cd "$REPO" && "$(venv_bin)/python" -m pip install --disable-pip-version-check -q -e '.[test,otel]')
    touch "$STAMP"
}

# Points MODELMUX_CLAUDE at a Claude Code CLI for tests/test_claude_code.py when
# none is on PATH; without one that test skips, saying why.
ensure_claude_code() {
    if [[ -n ${MODELMUX_CLAUDE:-} ]] || command -v claude >/dev/null 2>&1; then
        return 0
    fi
    local claude=$CLAUDE_PREFIX/node_modules/.bin/claude
    case ${OSTYPE:-} in msys* | cygwin* | win*) claude=$claude.cmd ;; esac
    if ! "$claude" --version >/dev/null 2>&1; then
        if ! command -v npm >/dev/null 2>&1; then
            say "Claude Code end-to-end test will be skipped: npm not found (install Node.js 18+ or Claude Code)"
            return 0
        fi
        say "installing Claude Code into .cache/claude-code for the end-to-end test"
        if ! npm install --prefix "$CLAUDE_PREFIX" --no-audit --no-fund --loglevel=error \
            "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION" </dev/null >&2; then
            say "Claude Code end-to-end test will be skipped: npm install @anthropic-ai/claude-code failed"
            return 0
        fi
        # npm may be set to skip install scripts; this one only links the platform's
        # native binary (an optional dependency npm already fetched) over a stub.
        local postinstall=$CLAUDE_PREFIX/node_modules/@anthropic-ai/claude-code/install.cjs
        if ! "$claude" --version >/dev/null 2>&1 && [[ -f $postinstall ]]; then
            (cd "$(dirname "$postinstall")" && node install.cjs </dev/null >&2) || true
        fi
        if ! "$claude" --version >/dev/null 2>&1; then
            say "Claude Code end-to-end test will be skipped: $claude does not run after npm install"
            return 0
        fi
    fi
    export MODELMUX_CLAUDE=$claude
}

# Headless Chromium for tests/test_dashboard_web.py (mitmweb in a real browser). As root
# with apt (CI containers) it is installed when missing; otherwise that test skips, saying why.
ensure_chromium() {
    local name
    if [[ -n ${MODELMUX_CHROMIUM:-} ]]; then
        return 0
    fi
    for name in chromium chromium-browser google-chrome google-chrome-stable; do
        if command -v "$name" >/dev/null 2>&1; then return 0; fi
    done
    if [[ $(id -u 2>/dev/null) != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        say "dashboard browser test will be skipped: no Chromium (install it, e.g. \`sudo apt-get install chromium\`)"
        return 0
    fi
    # With a colour emoji font: the screenshots show the summaries' ❌ 🔄 🏠, not empty boxes.
    say "installing Chromium (apt-get) for the dashboard browser test"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-color-emoji; } </dev/null >&2; then
        say "dashboard browser test will be skipped: apt-get install chromium failed"
    fi
}

# redis-server for the tests of several gateways sharing one pool state
# (tests/test_fleet_gateways.py). As root with apt (CI containers) Debian's package is
# installed when missing; otherwise those tests skip, saying why.
ensure_redis() {
    if [[ -n ${MODELMUX_REDIS_SERVER:-} ]] || command -v redis-server >/dev/null 2>&1; then
        return 0
    fi
    if [[ $(id -u 2>/dev/null) != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        say "shared-state (Redis) tests will be skipped: no redis-server (install it, e.g. \`sudo apt-get install redis-server\`)"
        return 0
    fi
    say "installing redis-server (apt-get) for the shared-state tests"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; } </dev/null >&2; then
        say "shared-state (Redis) tests will be skipped: apt-get install redis-server failed"
    fi
}

run_tests() {
    ensure_claude_code
    ensure_chromium
    ensure_redis
    cd "$REPO"
    local status=0
    "$(venv_bin)/python" -m pytest "$@" || status=$?
    if [[ $status -eq 5 ]]; then
        say "pytest ran no tests (exit 5): check the selection; failing so this does not look green"
        exit 1
    fi
    exit "$status"
}

command=${1:-}
case $command in
    serve)
        shift
        ensure_venv
        exec "$(venv_bin)/modelmux" serve "$@"
        ;;
    test)
        shift
        ensure_venv
        run_tests "$@"
        ;;
    -h | --help | help)
        usage
        ;;
    *)
        usage >&2
        exit 2
        ;;
esac

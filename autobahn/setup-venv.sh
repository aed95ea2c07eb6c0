#!/usr/bin/env bash
# Create the Python 2.7 virtualenv that runs Autobahn|Testsuite (`wstest`).
#
# autobahntestsuite is Python 2 code: it installs on Python 3 but fails at import. So:
#   1. a throwaway Python 3 "boot" venv gets virtualenv==20.21.1 (the last release that can still
#      create Python 2.7 environments);
#   2. that virtualenv creates $AUTOBAHN_VENV from pyenv's Python 2.7.18;
#   3. pip installs the pinned set in requirements-py27.txt (next to this script).
#
# Usage:  autobahn/setup-venv.sh
# Env:    AUTOBAHN_VENV     venv location (default: <repo>/.venv/autobahn)
#         AUTOBAHN_PYTHON27 Python 2.7 interpreter (default: pyenv's 2.7.18)
#
# Idempotent: if $AUTOBAHN_VENV/bin/wstest --autobahnversion already works, nothing is done.
# Non-interactive (fine under CI=true with no stdin).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
VENV="${AUTOBAHN_VENV:-$REPO/.venv/autobahn}"
REQS="$HERE/requirements-py27.txt"

log() { printf 'setup-venv: %s\n' "$*" >&2; }

if [ -x "$VENV/bin/wstest" ] && version="$("$VENV/bin/wstest" --autobahnversion 2>&1 </dev/null)"; then
    log "already set up at $VENV ($(printf '%s' "$version" | tr '\n' ' '))"
    exit 0
fi

# Locate Python 2.7.18: explicit override, then `pyenv root`, then the default pyenv location.
find_python27() {
    if [ -n "${AUTOBAHN_PYTHON27:-}" ]; then
        printf '%s\n' "$AUTOBAHN_PYTHON27"
        return
    fi
    local root
    if command -v pyenv >/dev/null 2>&1 && root="$(pyenv root 2>/dev/null)" \
        && [ -x "$root/versions/2.7.18/bin/python2.7" ]; then
        printf '%s\n' "$root/versions/2.7.18/bin/python2.7"
        return
    fi
    for root in "${PYENV_ROOT:-}" "$HOME/.pyenv"; do
        if [ -n "$root" ] && [ -x "$root/versions/2.7.18/bin/python2.7" ]; then
            printf '%s\n' "$root/versions/2.7.18/bin/python2.7"
            return
        fi
    done
    return 1
}

if ! PY27="$(find_python27)" || [ ! -x "$PY27" ]; then
    log "error: Python 2.7.18 not found (tried \$AUTOBAHN_PYTHON27, \$(pyenv root), \$PYENV_ROOT, ~/.pyenv)"
    exit 1
fi

# Python 3 for the boot venv. Prefer a real python3 on PATH (may be a pyenv shim).
PY3="${AUTOBAHN_PYTHON3:-python3}"
if ! command -v "$PY3" >/dev/null 2>&1; then
    log "error: $PY3 not found"
    exit 1
fi

log "creating $VENV from $PY27"
start=$SECONDS

BOOT="$(mktemp -d "${TMPDIR:-/tmp}/autobahn-boot.XXXXXX")"
trap 'rm -rf "$BOOT"' EXIT

export PIP_NO_INPUT=1
"$PY3" -m venv "$BOOT/venv"
"$BOOT/venv/bin/pip" install --quiet 'virtualenv==20.21.1' </dev/null

# A half-built venv from an interrupted run would confuse virtualenv/pip: start clean.
rm -rf "$VENV"
mkdir -p "$(dirname "$VENV")"
"$BOOT/venv/bin/virtualenv" --quiet -p "$PY27" "$VENV" </dev/null
"$VENV/bin/pip" install --quiet -r "$REQS" </dev/null

version="$("$VENV/bin/wstest" --autobahnversion 2>&1 </dev/null)"
log "done in $((SECONDS - start)) s: $(printf '%s' "$version" | tr '\n' ' ')"

#!/usr/bin/env bash
# The console's browser test, for CI: installs what it needs, then runs it.
#
#   bash tests/browser/run.sh
#
# Needs node >= 20 and npm. Installs Debian's chromium with apt when /usr/bin/chromium is
# missing (CI runs as root), runs `npm ci` here, builds weir (release) unless WEIR_BIN names a
# binary, and runs compression.test.mjs and console.test.mjs (each exits non-zero on failure,
# within 90 and 60 s).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

chromium="${CHROMIUM:-/usr/bin/chromium}"
if [[ ! -x "$chromium" ]]; then
    if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
        echo "run.sh: $chromium is missing; install Debian's chromium (apt-get install chromium)" >&2
        exit 1
    fi
    echo "run.sh: installing chromium with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q chromium
fi

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "run.sh: node and npm are needed" >&2
    exit 1
fi
if (( $(node -p 'process.versions.node.split(".")[0]') < 20 )); then
    echo "run.sh: node >= 20 is needed, not $(node --version)" >&2
    exit 1
fi

(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)

if [[ -z "${WEIR_BIN:-}" ]]; then
    cargo build --release --quiet
fi

# permessage-deflate with Chromium's own offer (issue 20), then the console.
node "$here/compression.test.mjs"
exec node "$here/console.test.mjs"

# Sourced by scripts/test, scripts/check-template and .ci/run: installs the Python tools the
# tests need (moto's server, cargo-lambda, cfn-lint, aws-sam-cli) with pip. Where pip refuses
# to install into the system Python (PEP 668, "externally managed"), they go into a virtual
# environment under the cache directory instead, which is then put first on PATH.

PY=${PYTHON:-python3}
TOOLS_VENV="${XDG_CACHE_HOME:-$HOME/.cache}/wix-media-archiver/venv"

# Use the venv made by an earlier run, if there is one.
if [ -x "$TOOLS_VENV/bin/python" ]; then
    export PATH="$TOOLS_VENV/bin:$PATH"
    PY="$TOOLS_VENV/bin/python"
fi

# pip_install SPEC...: into the current Python, else into the venv.
pip_install() {
    if "$PY" -m pip install --quiet --disable-pip-version-check "$@" 2>/tmp/wix-media-archiver-pip.err; then
        return 0
    fi
    if grep -q "externally-managed-environment" /tmp/wix-media-archiver-pip.err && [ ! -x "$TOOLS_VENV/bin/python" ]; then
        echo "pip refuses system installs here (PEP 668); using a virtual environment at $TOOLS_VENV" >&2
        "$PY" -m venv "$TOOLS_VENV" || return 1
        export PATH="$TOOLS_VENV/bin:$PATH"
        PY="$TOOLS_VENV/bin/python"
        "$PY" -m pip install --quiet --disable-pip-version-check "$@"
        return $?
    fi
    cat /tmp/wix-media-archiver-pip.err >&2
    return 1
}

# ensure_moto: moto's server with Flask, 5.2.5 or newer (5.2.1 answers the Rust SDK's
# CompleteMultipartUpload in a shape it cannot read).
ensure_moto() {
    if ! "$PY" -c '
import sys, moto.server, flask
from importlib.metadata import version
v = tuple(int(x) for x in version("moto").split(".")[:3] if x.isdigit())
sys.exit(0 if (5, 2, 5) <= v < (6,) else 1)' >/dev/null 2>&1; then
        echo "Installing moto[server]>=5.2.5,<6 with pip" >&2
        pip_install 'moto[server]>=5.2.5,<6'
    fi
}

# ensure_cargo_lambda: cargo-lambda (pip ships it with zig).
ensure_cargo_lambda() {
    if ! cargo lambda --version >/dev/null 2>&1; then
        echo "Installing cargo-lambda with pip" >&2
        pip_install cargo-lambda
        hash -r
    fi
}

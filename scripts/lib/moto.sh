# Sourced after scripts/lib/python-tools.sh by scripts/test and scripts/bench: start_moto
# starts moto's server on a free loopback port, exports MOTO_URL, and stops it when the
# calling script exits.
start_moto() {
    ensure_moto
    local port log
    port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    log="${TMPDIR:-/tmp}/wix-media-archiver-moto-$port.log"
    # Parts of 64 KiB let the stored-backup tests cross part boundaries with small files (S3
    # and moto otherwise refuse parts under 5 MiB but the last).
    S3_UPLOAD_PART_MIN_SIZE=65536 "$PY" -m moto.server -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
    MOTO_PID=$!
    trap 'kill "$MOTO_PID" 2>/dev/null || true' EXIT
    for _ in $(seq 1 100); do
        if "$PY" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/data.json', timeout=1)" >/dev/null 2>&1; then
            break
        fi
        if ! kill -0 "$MOTO_PID" 2>/dev/null; then
            echo "moto server did not start; its log:" >&2
            cat "$log" >&2
            exit 1
        fi
        sleep 0.2
    done
    echo "moto server on http://127.0.0.1:$port" >&2
    export MOTO_URL="http://127.0.0.1:$port"
}

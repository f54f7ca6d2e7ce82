# Sourced by .ci/run. ensure_build_space DIR...: the build directories (Cargo target
# directories) live outside the clone and are reused from run to run, so they grow with
# every change of the code. When the filesystem holding the first of them has less free
# space than a clean build and the tests need (BUILD_SPACE_GIB, default 30), the
# directories are removed and rebuilt from nothing. If that still leaves less than
# BUILD_SPACE_MIN_GIB (default 16), the run stops here, saying so, rather than failing
# later inside a linker or a test with a full disk.
free_gib() {
    df -P -k "$1" | awk 'NR == 2 { printf "%d", $4 / 1048576 }'
}

ensure_build_space() {
    local want="${BUILD_SPACE_GIB:-30}" least="${BUILD_SPACE_MIN_GIB:-16}" dir free
    mkdir -p "$1"
    free=$(free_gib "$1")
    echo "free space beside the build directory: ${free} GiB"
    if [ "$free" -lt "$want" ]; then
        for dir in "$@"; do
            if [ -d "$dir" ]; then
                echo "removing $dir ($(du -sh "$dir" 2>/dev/null | cut -f1)) for a clean build"
                rm -rf "$dir"
            fi
        done
        mkdir -p "$1"
        free=$(free_gib "$1")
        echo "free space after: ${free} GiB"
    fi
    if [ "$free" -lt "$least" ]; then
        echo "only ${free} GiB free where the build goes; a clean build and the tests need about ${least} GiB" >&2
        df -h "$1" >&2
        return 1
    fi
}

# Sourced by scripts/test and .ci/run: tests/console_browser.rs drives Debian's headless
# Chromium through its chromedriver. ensure_chromium installs both with apt when they are
# missing (as root, or through sudo); where that cannot be done it says so, and the browser
# test then fails with the same instructions (it never passes without a browser).
ensure_chromium() {
    if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
        return 0
    fi
    local as_root=""
    [ "$(id -u)" -eq 0 ] || as_root=sudo
    if command -v apt-get >/dev/null 2>&1 && { [ -z "$as_root" ] || command -v sudo >/dev/null 2>&1; }; then
        echo "Installing chromium and chromium-driver with apt (the console's browser test)" >&2
        $as_root apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq chromium chromium-driver >/dev/null
    fi
    if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
        echo "/usr/bin/chromium or /usr/bin/chromedriver is missing, so tests/console_browser.rs will fail;" \
            "install them with: apt-get install chromium chromium-driver" >&2
        return 1
    fi
}

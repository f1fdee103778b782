#!/usr/bin/env bash
# The project's one test command (README "Test"): formatting, lints with warnings denied, and
# every test in the workspace. `.ci/run` calls exactly this. Installs what a fresh machine lacks.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n== %s\n' "$*"; }

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust (https://rustup.rs) first" >&2
  exit 1
fi
for c in rustfmt clippy; do
  if ! cargo "${c/rustfmt/fmt}" --version >/dev/null 2>&1; then
    step "installing $c"
    rustup component add "$c"
  fi
done

# The dashboard's browser test (control/tests/browser.rs) drives a headless Chromium.
have_chromium() {
  if [ -n "${HFT_CHROMIUM:-}" ]; then [ -x "$HFT_CHROMIUM" ]; return; fi
  [ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1
}
if [ "${HFT_SKIP_BROWSER:-}" != 1 ] && ! have_chromium; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    step "installing chromium (headless, for the dashboard's browser test)"
    log="$(mktemp)"
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; } >"$log" 2>&1; then
      cat "$log" >&2
      echo "could not install chromium (above); HFT_SKIP_BROWSER=1 skips the browser test" >&2
      exit 1
    fi
    rm -f "$log"
    have_chromium || { echo "chromium installed but not found at /usr/bin/chromium or on PATH" >&2; exit 1; }
  else
    echo "chromium not found: the dashboard's browser test (control/tests/browser.rs) needs it." >&2
    echo "  Debian/Ubuntu: sudo apt-get install --no-install-recommends chromium" >&2
    echo "  or point HFT_CHROMIUM at a Chromium/Chrome binary, or set HFT_SKIP_BROWSER=1 to skip that test." >&2
    exit 1
  fi
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings denied)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
cargo test --workspace --locked

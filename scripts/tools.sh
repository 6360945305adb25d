# Shared by scripts/run and scripts/test: installs the build tools Pulse needs, only when missing.
# Versions are pinned to what builds on this toolchain (see docs/ARCHITECTURE.md, "Build").
set -euo pipefail

CARGO_LEPTOS_VERSION=0.3.10
WASM_BINDGEN_VERSION=0.2.130
WASM_OPT_VERSION=0.116.1

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

ensure_rust_target() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "Adding the wasm32-unknown-unknown Rust target"
    rustup target add wasm32-unknown-unknown
  fi
}

ensure_cargo_leptos() {
  if ! cargo leptos --version 2>/dev/null | grep -q "$CARGO_LEPTOS_VERSION"; then
    say "Installing cargo-leptos $CARGO_LEPTOS_VERSION (once; about 15 minutes on 2 cores)"
    cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked
  fi
}

ensure_wasm_bindgen() {
  # cargo-leptos would otherwise try to download wasm-bindgen, which fails offline.
  if ! wasm-bindgen --version 2>/dev/null | grep -q "$WASM_BINDGEN_VERSION"; then
    say "Installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (once; about 2 minutes)"
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
  fi
}

ensure_wasm_opt() {
  # Release builds run wasm-opt; Debian's binaryen is too old and breaks hydration.
  if ! wasm-opt --version 2>/dev/null | grep -q "116"; then
    say "Installing wasm-opt $WASM_OPT_VERSION (once; about 7 minutes)"
    cargo install wasm-opt --version "$WASM_OPT_VERSION" --locked
  fi
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

ensure_chromium() {
  if [ -z "${CHROMIUM_PATH:-}" ] && ! command -v chromium >/dev/null 2>&1; then
    say "Installing Chromium from Debian packages (once; about a minute)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
}

ensure_node() {
  if ! command -v npm >/dev/null 2>&1; then
    say "Installing Node.js and npm from Debian packages"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  fi
}

# npm ci only when package-lock.json changed since the last install.
ensure_node_modules() {
  local dir=$1
  local stamp="$dir/node_modules/.pulse-lock-stamp"
  if [ ! -f "$stamp" ] || ! cmp -s "$dir/package-lock.json" "$stamp"; then
    say "Installing node modules in ${dir#$ROOT/}"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$dir/package-lock.json" "$stamp"
  fi
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="$HOME/.cargo/bin:$PATH"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

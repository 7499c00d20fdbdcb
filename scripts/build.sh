#!/usr/bin/env bash
# Builds the worker with worker-build, using the locally installed wasm-bindgen (cargo) and
# wasm-opt (npm binaryen) instead of downloads. Usage: scripts/build.sh [--dev]
set -euo pipefail
cd "$(dirname "$0")/.."
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$(command -v wasm-bindgen || echo "$HOME/.cargo/bin/wasm-bindgen")}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$PWD/node_modules/.bin/wasm-opt}"
export ESBUILD_BIN="${ESBUILD_BIN:-$PWD/node_modules/.bin/esbuild}"
mode="--release"
[ "${1:-}" = "--dev" ] && mode="--dev"
exec worker-build "$mode"

#!/usr/bin/env bash
# The test suite: type-check, then every test file with Node's test runner (real ONNX Runtime, real servers on
# 127.0.0.1, real ffmpeg/RTSP/SQLite/Chromium). Run `bash scripts/setup.sh` once first (the README's command does).
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc -p tsconfig.json --noEmit
# Node 20's test runner does not expand globs itself: bash does.
shopt -s globstar nullglob
files=(test/**/*.test.ts)
[ ${#files[@]} -gt 0 ] || { echo "no test files found" >&2; exit 1; }
# One file at a time: the machine has 2 cores and several suites start servers and ONNX Runtime sessions.
exec node --import tsx --test --test-concurrency=1 --test-timeout=300000 "${files[@]}"

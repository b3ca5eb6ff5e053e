#!/usr/bin/env bash
# tools/bench.sh — the end-to-end throughput benchmark in one command: builds,
# then runs tests/bench/bench_gateway (a real gateway process, five agency
# adapters, signed 2 KiB documents, every acceptance fsync'd).
# usage: tools/bench.sh [MESSAGES] [BATCH] [WINDOW]
#   throughput: tools/bench.sh 20000 64 1000 (the default)
#   latency of a lone message: tools/bench.sh 400 1 1
set -euo pipefail
source "$(dirname "$0")/common.sh"
jx_install_packages
jx_build "$JX_ROOT/build" >/dev/null
cd "$JX_ROOT/build"
./tests/bench_gateway gateway/justx-gateway pki "$JX_ROOT/conf/gateway.conf" "${1:-20000}" "${2:-64}" "${3:-1000}"

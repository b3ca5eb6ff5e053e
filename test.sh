#!/usr/bin/env bash
# test.sh — install what is needed, build, and run the whole justx test suite.
set -euo pipefail
source "$(dirname "$0")/tools/common.sh"
jx_install_packages
jx_build "$JX_ROOT/build"
cd "$JX_ROOT/build"
ctest --output-on-failure -j 2 --timeout 600

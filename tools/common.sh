# tools/common.sh — shared by demo.sh, test.sh and .ci/run: install what the
# build needs from Debian, configure and build. Sourced, not run.

JX_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Everything justx builds, tests and runs with, from Debian 12.
JX_PACKAGES=(
  build-essential cmake pkg-config
  libssl-dev openssl
  libzmq3-dev
  libprotobuf-c-dev protobuf-c-compiler protobuf-compiler
  libconfig-dev libjansson-dev libmicrohttpd-dev libsqlite3-dev
  libcmocka-dev
  python3 curl
)
# The libFuzzer builds (cmake -DJX_FUZZ=ON) also need: clang libclang-rt-14-dev

jx_install_packages() {
  local missing=()
  for package in "${JX_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "==> installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
}

# jx_build BUILD_DIR [cmake options...]
jx_build() {
  local build_dir=$1
  shift
  echo "==> configuring and building in $build_dir"
  cmake -S "$JX_ROOT" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$build_dir" -j "$(nproc)"
}

# Shared by scripts/*: package installation and the gateway-profile wolfSSL.
# Sourced, not run. Uses: ROOT (repository top).

PSKGW_PACKAGES=(
  build-essential cmake pkg-config git ca-certificates curl openssl
  clang libclang-rt-14-dev clang-format
  dpkg-dev autoconf automake libtool
  libuv1-dev libcurl4-openssl-dev libhiredis-dev libcriterion-dev libconfig-dev libjansson-dev
  libmicrohttpd-dev libgnutls28-dev libsystemd-dev libmosquitto-dev librdkafka-dev
  redis-server mosquitto systemd jq python3 strace
  redis-sentinel           # Sentinel failover tests (redis+sentinel:// for the cache and the redis-stream sink)
  gnuplot-nox libcoap3-bin # the bench and its smoke test: plots, the peer (coap-server-openssl)
  mosquitto-clients        # the forwarding tests: mosquitto_pub --psk as the device, mosquitto_sub
  gcovr                    # scripts/test --coverage (and its test)
  prometheus               # promtool: tests of /metrics, contrib/prometheus rules and dashboard
  nghttp2-proxy            # nghttpx: an HTTPS + HTTP/2 front for pskgw-sim (upstream tests, bench)
)

log() { printf '== %s\n' "$*" >&2; }

# Install whatever of the given Debian packages is missing (non-interactive).
pskgw_need_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  # The tests start their own servers on free ports: packages such as redis-server, mosquitto,
  # prometheus and nghttp2-proxy must not start theirs on install (a machine without systemd
  # would run their init scripts). A policy-rc.d that refuses every start is put in place for the
  # install when the machine has none, and removed after.
  local policy=/usr/sbin/policy-rc.d added=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null && $sudo chmod 755 "$policy" &&
      added=1
  fi
  local rc=0
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    </dev/null >/dev/null || rc=$?
  [ $added -eq 0 ] || $sudo rm -f "$policy"
  return $rc
}

# Build the gateway-profile wolfSSL from Debian's source package, once per profile.
pskgw_need_wolfssl() {
  "$ROOT/scripts/build-wolfssl"
}

# Build DIR (configured already), all targets or the given ones, printing the compiler's output
# without the progress lines. Returns the build's own exit status: on failure the error lines are
# repeated at the end (with -j they are buried in other output) and the whole output stays in
# DIR/build.log. Never put it in a pipeline ending in `|| true`: test its status.
pskgw_build() { # dir [target...]
  local dir=$1 rc=0
  shift
  local targets=()
  [ $# -eq 0 ] || targets=(--target "$@")
  # The status of cmake itself, whatever the filter does: with pipefail the pipeline fails when
  # cmake does; without it, PIPESTATUS is read before any other command runs.
  cmake --build "$dir" -j"${PSKGW_JOBS:-$(nproc)}" "${targets[@]}" 2>&1 |
    tee "$dir/build.log" | { grep -Ev '^\[ *[0-9]+%\]|^Consolidate|^-- ' || true; } &&
    rc=${PIPESTATUS[0]} || rc=${PIPESTATUS[0]}
  [ "$rc" -ne 0 ] || return 0
  log "build FAILED in $dir (exit $rc); the errors (whole output: $dir/build.log):"
  grep -E 'error:|Error [0-9]+|undefined reference|No rule to make target|FAILED:' "$dir/build.log" |
    head -n 40 >&2 || true
  return "$rc"
}

pskgw_setup() {
  pskgw_need_packages "${PSKGW_PACKAGES[@]}"
  pskgw_need_wolfssl
}

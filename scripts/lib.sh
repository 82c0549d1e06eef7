# Shared by scripts/*: package installation and the gateway-profile wolfSSL.
# Sourced, not run. Uses: ROOT (repository top).

PSKGW_PACKAGES=(
  build-essential cmake pkg-config git ca-certificates curl openssl
  clang libclang-rt-14-dev clang-format
  dpkg-dev autoconf automake libtool
  libuv1-dev libcurl4-openssl-dev libhiredis-dev libcriterion-dev libconfig-dev libjansson-dev
  libmicrohttpd-dev libsystemd-dev libmosquitto-dev librdkafka-dev
  redis-server mosquitto systemd jq python3
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
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    </dev/null >/dev/null
}

# Build the gateway-profile wolfSSL from Debian's source package, once per profile.
pskgw_need_wolfssl() {
  "$ROOT/scripts/build-wolfssl"
}

pskgw_setup() {
  pskgw_need_packages "${PSKGW_PACKAGES[@]}"
  pskgw_need_wolfssl
}

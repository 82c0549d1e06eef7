#!/usr/bin/env bash
# JSON logs through the real binary: with --log-format json, and with log.format = "json" in the
# configuration, every line the gateway writes (start-up, warnings about bad devices, shutdown)
# parses as one JSON object with ts, level and msg (and nothing else is written); --log-format text on the command line wins
# over the configuration.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_peers.sh"

start_sim_tracked --devices 1000
all_json() { # file: every line a JSON object with string ts, level, msg
  [ -s "$1" ] && jq -e -s 'length > 0 and all(.[]; (.ts | type) == "string" and
    (.level | type) == "string" and (.msg | type) == "string")' "$1" >/dev/null
}
traffic() { # good devices and bad ones (unknown identity, wrong PSK): failed handshakes in the log
  "$BIN/pskgw-devsim" --target "127.0.0.1:$GW_UDP" --seed it --devices 10 --messages 1 --rate 20 \
    --unknown-share 0.2 --wrong-psk-share 0.2 --duration 60 --quiet >>"$WORK/fleet.txt" 2>&1 ||
    true
  wait_metric "pskgw_listener_auth_failures_total{domain=\"$1\",listener=\"dtls\"}" -ge 4 >/dev/null || true
}

# ---- --log-format json ---------------------------------------------------------------------------
write_config cli '' ''
start_gateway_args cli --log-format json
traffic cli
stop_gateway_checked cli
check "--log-format json: every line is a JSON object with ts, level, msg" all_json "$WORK/cli.log"
check "--log-format json: start-up, failed handshakes and shutdown are all there" bash -c "
  jq -r .level '$WORK/cli.log' | grep -qx info && jq -r .level '$WORK/cli.log' | grep -qx notice &&
  jq -r .msg '$WORK/cli.log' | grep -q 'running' && jq -r .msg '$WORK/cli.log' | grep -q 'stopped' &&
  jq -r .msg '$WORK/cli.log' | grep -q 'handshake with .* failed'"
check "--log-format json: no journald prefix left" bash -c "! grep -q '^<[0-7]>' '$WORK/cli.log'"

# ---- log.format in the configuration ------------------------------------------------------------
write_config cfg 'log = { format = "json"; level = "info"; };' ''
start_gateway_args cfg
traffic cfg
stop_gateway_checked cfg
check "log.format = json: every line is a JSON object with ts, level, msg" all_json "$WORK/cfg.log"

# ---- the command line wins ----------------------------------------------------------------------
write_config txt 'log = { format = "json"; };' ''
start_gateway_args txt --log-format text
stop_gateway_checked txt
# (not under journald: text lines start with the UTC time and the level, no <N> prefix)
check "--log-format text over log.format json: text lines" bash -c "
  [ -s '$WORK/txt.log' ] &&
    ! grep -qvE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z [a-z]+ pskgw: ' '$WORK/txt.log'"
finish_peers

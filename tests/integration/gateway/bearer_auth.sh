#!/usr/bin/env bash
# api.auth_header through the real binaries: the gateway talks to pskgw-sim through a recording
# proxy (httppeer.py) that notes the form of each request's Authorization header. With
# auth_header = "bearer" every GetPSK / E2E-parameters call carries "Bearer <token>"; with the
# default ("raw") the bare token; the authenticate call carries none; devices connect either way.
# The simulator is strict (lib.sh) and told the form the domain uses, so a wrong form also fails
# the devices' handshakes.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_peers.sh"

run_mode() { # name auth_header: a gateway through a fresh proxy, a fleet with E2E
  start_http "px-$1" proxy "$WORK/px-$1.jsonl" "$SIM_URL"
  write_config "$1" '' ''
  sed -i "s#^api = .*#api = { url = \"$HTTP_URL\"; key_id = \"it-key\"; secret_file = \"it.secret\"; \
timeout_ms = 5000; auth_header = \"$2\"; };#" "$WORK/$1.conf"
  [ "$2" = raw ] && sed -i 's/ auth_header = "raw";//' "$WORK/$1.conf" # the default
  start_gateway_args "$1"
  "$BIN/pskgw-devsim" --target "127.0.0.1:$GW_UDP" --seed it --devices 3 --messages 1 --rate 20 \
    --e2e v1 --duration 60 --verify-file "$WORK/$1.jsonl" --quiet >"$WORK/$1.txt" 2>&1 &&
    rc=0 || rc=$?
  check "$2: devices connect and their E2E messages are decrypted" [ "$rc" -eq 0 ]
  stop_gateway_checked "$1"
  stop_peer "px-$1"
}
forms() { # file path-regex -> the distinct Authorization forms of those requests
  jq -r --arg p "$2" 'select(.path | test($p)) | .authorization' "$1" | sort -u | paste -sd, -
}

start_sim_tracked --devices 1000 --auth-header bearer
run_mode br bearer
stop_peer sim
check "bearer: GetPSK calls were made through the proxy" \
  [ "$(jq -r 'select(.path == "/v1/GetPSK")' "$WORK/px-br.jsonl" | grep -c '"method"' || true)" -ge 1 ]
check "bearer: every GetPSK carries Authorization: Bearer <token> ($(forms "$WORK/px-br.jsonl" GetPSK))" \
  [ "$(forms "$WORK/px-br.jsonl" GetPSK)" = bearer ]
check "bearer: every E2E parameters call too ($(forms "$WORK/px-br.jsonl" E2E))" \
  [ "$(forms "$WORK/px-br.jsonl" E2E)" = bearer ]
check "bearer: authenticate carries no token" [ "$(forms "$WORK/px-br.jsonl" authenticate)" = none ]

start_sim_tracked --devices 1000
run_mode rw raw
check "raw (default): every GetPSK carries the bare token ($(forms "$WORK/px-rw.jsonl" GetPSK))" \
  [ "$(forms "$WORK/px-rw.jsonl" GetPSK)" = raw ]
check "raw (default): every E2E parameters call too" [ "$(forms "$WORK/px-rw.jsonl" E2E)" = raw ]
check "no token or secret in the gateway's logs" bash -c "! grep -qi 'bearer\|it-secret' '$WORK/br.log' '$WORK/rw.log'"
finish_peers

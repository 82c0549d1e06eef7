#!/usr/bin/env bash
# Issue 16 §3: an E2E payload is bound to the device whose session carries it. Through the real
# binaries (pskgw-sim <- pskgw <- an OpenSSL DTLS client as device 0, tests/.../e2e_client.c):
# device 1's E2E payload sent in device 0's session is rejected (uid_mismatch), never forwarded;
# device 0's own payloads are forwarded with the parameters' rot_public_uid in the e2e object;
# the same key identity sent again is a replay: flagged by default, rejected with
# e2e_replay = "reject".
. "$(dirname "$0")/lib.sh"
CLIENT=$BIN/tests/e2e_client

start_sim --devices 10

wait_metric() { # name{labels} value: the metric reaches the value (deadline: a guard only)
  local i v
  for ((i = 0; i < 300; i++)); do
    v=$(metric "$1")
    [ -n "$v" ] && [ "$v" = "$2" ] && return 0
    sleep 0.1
  done
  echo "metric $1 is '${v:-}' (want $2)" >&2
  return 1
}

wait_lines() { # file count
  local i
  for ((i = 0; i < 300; i++)); do
    [ "$(wc -l <"$1" 2>/dev/null || echo 0)" -ge "$2" ] && return 0
    sleep 0.1
  done
  echo "$1 has $(wc -l <"$1" 2>/dev/null || echo 0) lines (want $2)" >&2
  return 1
}

plaintexts() { jq -r '.payload' "$1" | while read -r p; do base64 -d <<<"$p"; echo; done; }

run_case() { # name e2e_replay-line
  write_config "$1" "$2" ""
  sed -i 's/^e2e = .*/e2e = "required";/' "$WORK/$1.conf"
  start_gateway "$1"
  # in device 0's session: device 1's payload, then device 0's KI 1, KI 1 again, KI 2
  check "$1: the client's session and records" "$CLIENT" "$GW_UDP" it 0 1:0 0:1 0:1 0:2
  check "$1: the mismatch is counted as uid_mismatch" \
    wait_metric "pskgw_e2e_payloads_total{domain=\"$1\",outcome=\"rejected\",reason=\"uid_mismatch\"}" 1
  check "$1: the replay is counted" wait_metric "pskgw_domain_e2e_replays_total{domain=\"$1\"}" 1
}

# --- default: replays flagged -------------------------------------------------------------
run_case flag ""
check "flag: device 0's three payloads forwarded" wait_lines "$WORK/flag.jsonl" 3
pts=$(plaintexts "$WORK/flag.jsonl")
check "flag: device 1's payload never forwarded" bash -c "! grep -q 'dev 1' <<<'$pts'"
# (payloads of different key identities may overtake each other: compare sorted)
check "flag: forwarded: ctr 1 twice, ctr 2 once" \
  test "$(sort <<<"$pts" | tr '\n' ',')" = "dev 0 ctr 1,dev 0 ctr 1,dev 0 ctr 2,"
uids=$(jq -r '[.rot_public_uid, .e2e.rot_public_uid] | join(" ")' "$WORK/flag.jsonl" | sort -u)
check "flag: the e2e object carries the parameters' rot_public_uid, the session's ($uids)" \
  bash -c "[ \$(wc -l <<<'$uids') -eq 1 ] && read -r a b <<<'$uids' && [ -n \"\$a\" ] && [ \"\$a\" = \"\$b\" ]"
flagged=$(jq -r 'select(.e2e.replay == true) | .payload' "$WORK/flag.jsonl" | base64 -d)
check "flag: exactly one payload flagged, the repeated key identity ('$flagged')" \
  test "$flagged" = "dev 0 ctr 1"
check "flag: the others say replay false" \
  test "$(jq -r 'select(.e2e.replay == false) | .e2e.key_identity' "$WORK/flag.jsonl" | wc -l)" = 2
check "flag: the log names the reason" grep -q 'rejected: uid_mismatch' "$WORK/flag.log"
stop_gateway

# --- e2e_replay = "reject" ----------------------------------------------------------------
run_case reject 'e2e_replay = "reject"; e2e_replay_window_s = 3600;'
check "reject: the replay is rejected" \
  wait_metric "pskgw_e2e_payloads_total{domain=\"reject\",outcome=\"rejected\",reason=\"replay\"}" 1
check "reject: two payloads forwarded" wait_lines "$WORK/reject.jsonl" 2
check "reject: ctr 1 once and ctr 2, nothing of device 1" \
  test "$(plaintexts "$WORK/reject.jsonl" | sort | tr '\n' ',')" = "dev 0 ctr 1,dev 0 ctr 2,"
check "reject: rejections counted in the domain total" \
  wait_metric "pskgw_domain_rejected_e2e_total{domain=\"reject\"}" 2
stop_gateway
finish

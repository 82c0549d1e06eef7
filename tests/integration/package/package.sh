#!/usr/bin/env bash
# cpack -G DEB builds pskgw_<version>_<arch>.deb and pskgw-tools_<version>_<arch>.deb from the
# build directory; the gateway package, unpacked in a scratch root (dpkg -x), holds what the
# units, the examples and the docs name, and its files agree with each other:
# - the binary, both units, sysusers.d and tmpfiles.d entries, man pages pskgw(8) and
#   pskgw.conf(5), the docs the units' Documentation= names, the examples, contrib/;
# - the units run the packaged binary, pass systemd-analyze verify (their man: pages found in
#   the package), set LimitCORE=0 and name no domain of the examples;
# - systemd-sysusers and systemd-tmpfiles, run on the scratch root, create the user and every
#   state directory the examples write in;
# - one credential naming convention (DOMAIN-PURPOSE in /etc/pskgw/credentials/) in the units,
#   the examples and OPERATIONS.md;
# - the man pages format without a warning and pskgw(8) names every option of pskgw --help.
set -uo pipefail
SRC=${PSKGW_SOURCE_DIR:?}
BLD=${PSKGW_BIN_DIR:?}
. "$SRC/tests/support/skip.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pskgw-pkg.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

for t in cpack dpkg-deb systemd-analyze systemd-sysusers systemd-tmpfiles groff; do
  command -v "$t" >/dev/null || { pskgw_missing "$t" || exit 1; pskgw_skip_status 0 0; exit $?; }
done

# The packages, built from the configured build directory into the scratch directory.
if ! (cd "$tmp" && cpack -G DEB --config "$BLD/CPackConfig.cmake" -B "$tmp/out") >"$tmp/cpack.log" 2>&1; then
  bad "cpack -G DEB"; tail -n 30 "$tmp/cpack.log"; pskgw_skip_status "$passed" "$failed"; exit 1
fi
version=$("$BLD/pskgw" --version | awk 'NR == 1 { print $2 }')
arch=$(dpkg --print-architecture)
deb=$tmp/out/pskgw_${version}_${arch}.deb
tools=$tmp/out/pskgw-tools_${version}_${arch}.deb
check "cpack built pskgw_${version}_${arch}.deb" test -f "$deb"
check "cpack built pskgw-tools_${version}_${arch}.deb" test -f "$tools"
[ -f "$deb" ] || { pskgw_skip_status "$passed" "$failed"; exit 1; }
check "package name, version and architecture in the control file" \
  test "$(dpkg-deb -f "$deb" Package Version Architecture | tr '\n' ' ')" = \
  "Package: pskgw Version: $version Architecture: $arch "
depends=$(dpkg-deb -f "$deb" Depends)
check "Depends from the linked libraries ($depends)" \
  bash -c "grep -q 'libuv1' <<<'$depends' && grep -q 'libconfig' <<<'$depends' && grep -q systemd <<<'$depends'"
dpkg-deb -c "$tools" >"$tmp/tools.list" 2>&1 || true
dpkg-deb -c "$deb" >"$tmp/gateway.list"
check "the tools package holds pskgw-sim and pskgw-devsim" \
  bash -c "grep -q '/usr/bin/pskgw-sim\$' '$tmp/tools.list' && grep -q '/usr/bin/pskgw-devsim\$' '$tmp/tools.list'"
check "the gateway package does not hold the simulators" bash -c "! grep -q pskgw-sim '$tmp/gateway.list'"

root=$tmp/root
mkdir -p "$root"
dpkg-deb -x "$deb" "$root"
dpkg-deb -e "$deb" "$tmp/control"
for f in usr/bin/pskgw usr/lib/systemd/system/pskgw.service usr/lib/systemd/system/pskgw@.service \
  usr/lib/sysusers.d/pskgw.conf usr/lib/tmpfiles.d/pskgw.conf usr/share/man/man8/pskgw.8 \
  usr/share/man/man5/pskgw.conf.5 usr/share/doc/pskgw/OPERATIONS.md usr/share/doc/pskgw/CONFIG.md \
  usr/share/doc/pskgw/examples/production-redis.conf usr/share/doc/pskgw/examples/multi-sink.conf \
  usr/share/doc/pskgw/examples/pskgw.service.d/credentials.conf usr/share/doc/pskgw/contrib/prometheus/pskgw.rules.yml \
  usr/share/doc/pskgw/contrib/grafana/pskgw.json; do
  check "installs /$f" test -s "$root/$f"
done
check "/usr/bin/pskgw is the built binary" cmp -s "$root/usr/bin/pskgw" "$BLD/pskgw"
check "postinst creates the user and the directories" \
  bash -c "grep -q 'systemd-sysusers pskgw.conf' '$tmp/control/postinst' && grep -q 'systemd-tmpfiles --create pskgw.conf' '$tmp/control/postinst'"

# The units: the packaged binary, documentation that is in the package, valid for systemd.
domains=$(sed -n 's/^domain = "\([^"]*\)";.*/\1/p' "$SRC"/examples/*.conf | sort -u | tr '\n' ' ')
for unit in pskgw.service pskgw@.service; do
  u=$root/usr/lib/systemd/system/$unit
  check "$unit runs /usr/bin/pskgw" bash -c "grep -q '^ExecStart=/usr/bin/pskgw ' '$u' && ! grep -q '@[A-Z_]*@' '$u'"
  check "$unit: LimitCORE=0" grep -qx 'LimitCORE=0' "$u"
  for d in $domains; do
    check "$unit names no example domain ($d)" bash -c "! grep -qiw '$d' '$u'"
  done
  for doc in $(sed -n 's/^Documentation=//p' "$u"); do
    case $doc in
      file:*) check "$unit: Documentation=$doc is in the package" test -s "$root${doc#file:}" ;;
      man:*) page=${doc#man:}; name=${page%(*}; sec=${page#*(}; sec=${sec%)}
        check "$unit: Documentation=$doc is in the package" test -s "$root/usr/share/man/man$sec/$name.$sec" ;;
      *) bad "$unit: unexpected Documentation=$doc" ;;
    esac
  done
  # verify against the unpacked binary, with man pages looked up in the package
  name=$unit; [ "$unit" = pskgw@.service ] && name=pskgw@0.service
  mkdir -p "$tmp/units"
  sed "s#/usr/bin/pskgw#$root/usr/bin/pskgw#g" "$u" >"$tmp/units/$unit"
  out=$(cd "$tmp/units" && MANPATH="$root/usr/share/man" systemd-analyze verify "$tmp/units/$name" 2>&1)
  check "systemd-analyze verify $unit (installed copy)${out:+: $out}" [ -z "$out" ]
done

# The user and the directories, created on the scratch root as the postinst would.
mkdir -p "$root/etc"
check "systemd-sysusers creates the pskgw user" \
  bash -c "systemd-sysusers --root='$root' pskgw.conf >/dev/null 2>&1 && grep -q '^pskgw:' '$root/etc/passwd'"
check "systemd-tmpfiles --create succeeds" \
  bash -c "systemd-tmpfiles --root='$root' --create pskgw.conf >'$tmp/tmpfiles.log' 2>&1 || { cat '$tmp/tmpfiles.log'; false; }"
for d in /var/lib/pskgw /etc/pskgw/domains /etc/pskgw/credentials; do
  check "tmpfiles creates $d" test -d "$root$d"
done
# every directory the packaged examples write in: spool.path, and the parent of file sinks'
# path and dead_letter_path
for f in "$root"/usr/share/doc/pskgw/examples/*.conf; do
  while read -r dir; do
    check "$(basename "$f"): $dir exists after tmpfiles" test -d "$root$dir"
    check "$(basename "$f"): $dir belongs to the pskgw user (uid $(stat -c %u "$root$dir"))" \
      test "$(stat -c %u "$root$dir")" = "$(awk -F: '$1 == "pskgw" { print $3 }' "$root/etc/passwd")"
  done < <(grep -Eo '(spool = \{ path|[^_]path|dead_letter_path) = "/[^"]*"' "$f" |
           sed -E 's/.*"(.*)"/\1/' |
           while read -r p; do case $p in */spool|*/spool/) echo "$p" ;; *) dirname "$p" ;; esac; done |
           sort -u)
done

# pskgw --check-config (which checks those directories too) accepts the packaged production
# examples on the scratch root, with stand-ins for the credentials credentials.conf names.
mkdir -p "$tmp/creds" "$tmp/ex"
for c in $(sed -n 's/^LoadCredential=\([^:]*\):.*/\1/p' "$root/usr/share/doc/pskgw/examples/pskgw.service.d/credentials.conf"); do
  case $c in *-kek) printf '%064d' 7 ;; *-http-headers) printf 'Authorization: Bearer t\n' ;; *) printf 's3cret' ;; esac >"$tmp/creds/$c"
done
for f in production-redis.conf multi-sink.conf; do
  sed "s#/var/lib/pskgw/#$root/var/lib/pskgw/#g" "$root/usr/share/doc/pskgw/examples/$f" >"$tmp/ex/$f"
  out=$(CREDENTIALS_DIRECTORY="$tmp/creds" "$root/usr/bin/pskgw" --check-config "$tmp/ex/$f" 2>&1)
  check "pskgw --check-config $f on the installed tree${out:+: $out}" \
    bash -c "grep -q 'configuration valid' <<<'$out'"
done

# One credential convention: DOMAIN-PURPOSE, kept as /etc/pskgw/credentials/DOMAIN-PURPOSE.
cred=$root/usr/share/doc/pskgw/examples/pskgw.service.d/credentials.conf
re='^LoadCredential=([a-z0-9._-]+)-(api-secret|kek|http-headers|mqtt-password):/etc/pskgw/credentials/\1-\2$'
check "credentials.conf: every LoadCredential= is DOMAIN-PURPOSE:/etc/pskgw/credentials/DOMAIN-PURPOSE" \
  bash -c "grep '^LoadCredential=' '$cred' | grep -Evx -- '$re' | { ! grep .; }"
for f in "$SRC"/examples/production-redis.conf "$SRC"/examples/multi-sink.conf; do
  d=$(sed -n 's/^domain = "\([^"]*\)";.*/\1/p' "$f")
  for s in $(grep -Eo '(secret_file|kek_file|headers_file|password_file) = "[^"]*"' "$f" | sed -E 's/.*"(.*)"/\1/'); do
    check "$(basename "$f"): credential $s is $d-PURPOSE and in credentials.conf" \
      bash -c "[[ '$s' == '$d'-* ]] && grep -q '^LoadCredential=$s:/etc/pskgw/credentials/$s\$' '$cred'"
  done
  check "$(basename "$f"): its comments use /etc/pskgw/credentials/" \
    bash -c "! grep -q '/etc/pskgw/secrets' '$f' && grep -q '/etc/pskgw/credentials/' '$f'"
done
for f in "$SRC/docs/OPERATIONS.md" "$root"/usr/lib/systemd/system/pskgw*.service; do
  check "$(basename "$f") uses /etc/pskgw/credentials/, not another directory" \
    bash -c "! grep -q '/etc/pskgw/secrets' '$f' && grep -q '/etc/pskgw/credentials/' '$f'"
done

# Man pages: no groff warning; pskgw(8) names every option of --help.
for m in man8/pskgw.8 man5/pskgw.conf.5; do
  out=$(LC_ALL=C.UTF-8 groff -man -ww -z "$root/usr/share/man/$m" 2>&1)
  check "$m formats without a warning${out:+: $out}" [ -z "$out" ]
  check "$m carries the version" grep -q "pskgw $version" "$root/usr/share/man/$m"
done
for opt in $("$BLD/pskgw" --help | grep -Eo '^ +--[a-z-]+' | sort -u); do
  pat=$(printf '%s' "$opt" | sed 's/-/\\-/g') # roff writes a hyphen-minus as \-
  check "pskgw(8) documents $opt" grep -qF -- "$pat" "$root/usr/share/man/man8/pskgw.8"
done

pskgw_skip_status "$passed" "$failed"

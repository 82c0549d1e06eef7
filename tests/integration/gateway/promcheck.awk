# Strict checker of the Prometheus text format 0.0.4 as pskgw writes it. Prints every problem;
# exit status 1 if any.
function err(msg) { printf "line %d: %s: %s\n", NR, msg, $0; bad = 1 }
function family_of(n,   b) {
  if (n in type) return n
  if (n ~ /_(bucket|sum|count)$/) { b = n; sub(/_(bucket|sum|count)$/, "", b); if (type[b] == "histogram") return b }
  return ""
}
BEGIN { bad = 0; cur = "" }
/^# HELP / {
  n = $3
  if (n !~ /^[a-zA-Z_:][a-zA-Z0-9_:]*$/) err("bad metric name")
  if (n in help) err("second HELP for " n)
  help[n] = 1
  if (n in done) err("family " n " reopened")
  next
}
/^# TYPE / {
  n = $3
  if (n in type) err("second TYPE for " n)
  if ($4 !~ /^(counter|gauge|histogram|summary|untyped)$/ || NF != 4) err("bad TYPE")
  if (n in seen_samples) err("TYPE after samples of " n)
  type[n] = $4
  if (cur != "" && cur != n) done[cur] = 1
  cur = n
  next
}
/^#/ { next }
/^$/ { err("empty line"); next }
{
  line = $0
  if (!match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*/)) { err("no metric name"); next }
  name = substr(line, 1, RLENGTH); rest = substr(line, RLENGTH + 1)
  labels = ""; delete lnames; le = ""
  if (substr(rest, 1, 1) == "{") {
    rest = substr(rest, 2)
    while (substr(rest, 1, 1) != "}") {
      if (!match(rest, /^[a-zA-Z_][a-zA-Z0-9_]*="/)) { err("bad label"); next }
      ln = substr(rest, 1, RLENGTH - 2); rest = substr(rest, RLENGTH + 1)
      if (ln in lnames) err("duplicate label " ln)
      lnames[ln] = 1
      v = ""
      while (1) {
        c = substr(rest, 1, 1)
        if (c == "") { err("unterminated label value"); next }
        if (c == "\\") {
          d = substr(rest, 2, 1)
          if (d != "\\" && d != "\"" && d != "n") { err("bad escape"); next }
          v = v c d; rest = substr(rest, 3); continue
        }
        rest = substr(rest, 2)
        if (c == "\"") break
        v = v c
      }
      if (ln == "le") le = v
      labels = labels ln "=" v ","
      c = substr(rest, 1, 1)
      if (c == ",") rest = substr(rest, 2)
      else if (c != "}") { err("expected , or }"); next }
    }
    rest = substr(rest, 2)
  }
  if (rest !~ /^ [-+]?([0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?|[Nn]a[Nn]|[Ii]nf)( -?[0-9]+)?$/) { err("bad value"); next }
  split(substr(rest, 2), vv, " ")
  f = family_of(name)
  if (f == "") { err("sample without TYPE"); next }
  if (f != cur) err("sample of " f " not contiguous with its family")
  seen_samples[f] = 1
  key = name "{" labels "}"
  if (key in series) err("duplicate series")
  series[key] = 1
  if (type[f] == "histogram") {
    if (name == f) err("histogram sample without suffix")
    if (name == f "_bucket") {
      if (le == "") err("bucket without le")
      base = labels; sub(/le=[^,]*,/, "", base)
      if (le == "+Inf") { inf[f "|" base] = vv[1] }
      else if ((f "|" base) in lastle && lastle[f "|" base] + 0 >= le + 0) err("le not increasing")
      if ((f "|" base) in lastv && lastv[f "|" base] + 0 > vv[1] + 0) err("bucket counts decrease")
      lastle[f "|" base] = le; lastv[f "|" base] = vv[1]
    }
    if (name == f "_count") {
      if (!((f "|" labels) in inf)) err("_count without +Inf bucket")
      else if (inf[f "|" labels] != vv[1]) err("+Inf bucket != _count")
    }
  } else if (name != f) err("sample name differs from its family")
}
END { exit bad }

#!/usr/bin/env python3
"""Reads a Grafana dashboard and a /metrics scrape; checks that every panel query names only
metrics the gateway exposes (or Prometheus' own `up`), and writes the queries as a rules file
(template variables replaced) for `promtool check rules` to parse.

usage: dashboard_exprs.py DASHBOARD.json METRICS.txt RULES_OUT.yml
Prints one line per problem; exit status 1 if any."""
import json
import re
import sys

FUNCS = {"sum", "min", "max", "avg", "count", "rate", "irate", "increase", "deriv", "delta",
         "histogram_quantile", "by", "without", "on", "ignoring", "and", "or", "unless",
         "clamp_min", "clamp_max", "abs", "label_values", "topk", "bottomk"}


def exprs(dash):
    for p in dash.get("panels", []):
        for sub in [p] + p.get("panels", []):
            for t in sub.get("targets", []):
                yield sub.get("title", "?"), t["expr"]


def main():
    dash = json.load(open(sys.argv[1]))
    exposed = set()
    for line in open(sys.argv[2]):
        if line.strip() and not line.startswith("#"):
            exposed.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
    exposed.add("up")
    bad = 0
    n = 0
    rules = ["groups:", "  - name: dashboard", "    rules:"]
    for title, e in exprs(dash):
        n += 1
        concrete = (e.replace("$__rate_interval", "5m").replace('"$job"', '"pskgw"')
                    .replace("$instance", ".*").replace("$domain", ".*"))
        if "$" in concrete:
            print(f"panel '{title}': unresolved variable in {e}")
            bad = 1
        names = re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{", concrete)
        if not names:
            print(f"panel '{title}': no metric selector in {e}")
            bad = 1
        for name in names:
            if name not in exposed and name not in FUNCS:
                print(f"panel '{title}': metric {name} is not exposed by pskgw")
                bad = 1
        rules.append(f"      - record: dashboard:query{n}")
        rules.append("        expr: " + json.dumps(concrete))
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query", "")
        for name in re.findall(r"label_values\(([a-zA-Z_:][a-zA-Z0-9_:]*)", q):
            if name not in exposed:
                print(f"variable {v['name']}: metric {name} is not exposed by pskgw")
                bad = 1
    if n == 0:
        print("no queries found")
        bad = 1
    open(sys.argv[3], "w").write("\n".join(rules) + "\n")
    print(f"{n} dashboard queries read")
    return bad


sys.exit(main())

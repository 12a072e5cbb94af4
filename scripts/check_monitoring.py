#!/usr/bin/env python3
"""Checks the Grafana dashboards and the alert rules against each other and against the code.

Usage: check_monitoring.py PROMTOOL

- every dashboard is valid JSON with a unique uid, unique panel ids, panels inside the 24-column
  grid, and every panel and query on the `${datasource}` variable;
- every PromQL query of the dashboards parses (they are handed to `promtool check rules` as
  recording rules, with Grafana's variables replaced by values);
- every metric named by a dashboard or an alert is one the code registers (a string literal in
  the Rust sources), so a renamed metric cannot leave a silent panel or an alert that never fires.
"""

import json
import pathlib
import re
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
DASHBOARDS = sorted((ROOT / "config" / "grafana").glob("*.json"))
ALERTS = ROOT / "config" / "prometheus" / "alerts.yaml"
# Metrics that Prometheus itself or the `prometheus` crate's process collector provide.
BUILT_IN = {"up", "process_resident_memory_bytes", "process_cpu_seconds_total"}
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "$namespace": ".*",
    "$instance": ".*",
}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
            "offset", "bool", "inf", "nan"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

failures = []


def fail(message):
    failures.append(message)


def registered_metrics():
    names = set(BUILT_IN)
    for path in ROOT.glob("*/src/**/*.rs"):
        names.update(re.findall(r'"((?:finagent|http)_[a-z_]+)"', path.read_text()))
    return names


def metric_names(expr):
    """The metric names of a PromQL expression: what is left once strings, label matchers, ranges,
    grouping clauses, function calls, keywords and numbers are taken out."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    for name in re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b(?!\s*\()", expr):
        if name.lower() in KEYWORDS or re.fullmatch(r"\d+[smhdwy]", name):
            continue
        for suffix in HISTOGRAM_SUFFIXES:
            if name.endswith(suffix) and not name.endswith("_total"):
                name = name[: -len(suffix)]
                break
        yield name


def check_dashboard(path, uids, queries):
    try:
        board = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        fail(f"{path.name}: not JSON: {error}")
        return
    uid = board.get("uid")
    if not uid or uid in uids:
        fail(f"{path.name}: missing or repeated uid {uid!r}")
    uids.add(uid)
    if not board.get("title"):
        fail(f"{path.name}: no title")
    variables = {v.get("name") for v in board.get("templating", {}).get("list", [])}
    if "datasource" not in variables:
        fail(f"{path.name}: no datasource variable")
    ids = set()
    for panel in board.get("panels", []):
        name = f"{path.name} panel {panel.get('title')!r}"
        if panel.get("id") in ids:
            fail(f"{name}: repeated id {panel.get('id')}")
        ids.add(panel.get("id"))
        grid = panel.get("gridPos", {})
        if grid.get("x", 0) + grid.get("w", 0) > 24:
            fail(f"{name}: wider than the grid")
        if panel.get("datasource", {}).get("uid") != "${datasource}":
            fail(f"{name}: not on the ${{datasource}} variable")
        targets = panel.get("targets", [])
        if not targets:
            fail(f"{name}: no query")
        for target in targets:
            expr = target.get("expr", "")
            if not expr:
                fail(f"{name}: empty query")
            used = set(re.findall(r"\$\w+", expr)) - set(GRAFANA_VARIABLES)
            if used:
                fail(f"{name}: unknown variables {sorted(used)}")
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            queries.append((name, expr))


def main():
    promtool = sys.argv[1]
    uids = set()
    queries = []
    for path in DASHBOARDS:
        check_dashboard(path, uids, queries)
    if len(DASHBOARDS) < 3:
        fail(f"expected the API, OCR pipeline and operator dashboards, found {len(DASHBOARDS)}")

    # Parse every query with promtool, as recording rules.
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as rules:
        groups = {"groups": [{"name": "dashboards", "rules": [
            {"record": f"dashboard:query_{i}", "expr": expr} for i, (_, expr) in enumerate(queries)
        ]}]}
        json.dump(groups, rules)  # JSON is YAML
    checked = subprocess.run([promtool, "check", "rules", rules.name], capture_output=True, text=True)
    pathlib.Path(rules.name).unlink()
    if checked.returncode != 0:
        fail("promtool refused a dashboard query:\n" + checked.stdout + checked.stderr)

    known = registered_metrics()
    alerts_text = ALERTS.read_text()
    alert_exprs = re.findall(r"expr: (?:\|\n)?((?:.+\n?)+?)\s+(?:for|labels):", alerts_text)
    sources = [(name, expr) for name, expr in queries] + [("alerts.yaml", e) for e in alert_exprs]
    if not alert_exprs:
        fail("no alert expressions found in alerts.yaml")
    for name, expr in sources:
        for metric in metric_names(expr):
            if metric not in known:
                fail(f"{name}: metric {metric} is not registered by the code")

    if failures:
        print("\n".join(failures), file=sys.stderr)
        sys.exit(1)
    print(f"monitoring: {len(DASHBOARDS)} dashboards, {len(queries)} queries parsed, "
          f"{len(alert_exprs)} alert expressions, every metric registered by the code")


if __name__ == "__main__":
    main()

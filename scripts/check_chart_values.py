#!/usr/bin/env python3
"""Every value of the chart is documented: each key of values.yaml either carries a `# --`
comment or sits under one that does, and every documented key has a row in the chart's README.

Usage: check_chart_values.py CHART_DIR
"""

import pathlib
import re
import sys

chart = pathlib.Path(sys.argv[1])
lines = (chart / "values.yaml").read_text().splitlines()
readme = (chart / "README.md").read_text()

documented, undocumented = [], []
stack = []  # (indent, key)
comment = False
for line in lines:
    stripped = line.strip()
    if stripped.startswith("# --"):
        comment = True
        continue
    if stripped.startswith("#") or not stripped:
        if not stripped:
            comment = False
        continue
    match = re.match(r"^( *)([A-Za-z0-9_.\-]+):", line)
    if not match:
        continue  # a list item or a continued value
    indent, key = len(match.group(1)), match.group(2)
    while stack and stack[-1][0] >= indent:
        stack.pop()
    path = ".".join([k for _, k in stack] + [key])
    ancestors = [".".join(k for _, k in stack[: i + 1]) for i in range(len(stack))]
    if comment:
        documented.append(path)
    elif not any(a in documented for a in ancestors) and not line.rstrip().endswith(":"):
        undocumented.append(path)
    stack.append((indent, key))
    comment = False

missing = [path for path in documented if f"`{path}`" not in readme]
problems = [f"values.yaml: {path} has no `# --` comment" for path in undocumented]
problems += [f"README.md: no row for `{path}`" for path in missing]
if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"chart values: {len(documented)} documented, each in README.md")

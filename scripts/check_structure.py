#!/usr/bin/env python3
"""The shape of the source tree, checked in CI:

- no circle of `use` dependencies between the modules of a crate (scripts/module_cycles.py);
- no Rust file of more than 600 lines, generated ones aside;
- the README's layout table names every top-level folder in the repository, and nothing else.

Exits 1 with what is wrong. Usage: scripts/check_structure.py
"""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import module_cycles  # noqa: E402

MAX_LINES = 600
# Written by a tool, not by hand.
GENERATED = re.compile(r"^(crds/|charts/.*/files/)")


def tracked():
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [path for path in out.splitlines() if os.path.exists(os.path.join(ROOT, path))]


def long_files(files):
    found = []
    for path in files:
        if path.endswith(".rs") and not GENERATED.match(path):
            with open(os.path.join(ROOT, path), encoding="utf-8") as source:
                lines = sum(1 for _ in source)
            if lines > MAX_LINES:
                found.append(f"{path}: {lines} lines (at most {MAX_LINES})")
    return found


def layout_mismatches(files):
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as readme:
        text = readme.read()
    table = re.search(r"^\| path \| what it holds \|\n\|[-| ]+\|\n((?:\|.*\|\n)+)", text, re.MULTILINE)
    if not table:
        return ["README.md: no layout table (a `| path | what it holds |` table)"]
    named = set()
    for row in table.group(1).splitlines():
        first = row.split("|")[1]
        named.update(name.split("/")[0] for name in re.findall(r"`([^`]+)`", first))
    folders = {path.split("/")[0] for path in files if "/" in path}
    problems = [f"README.md layout table: `{folder}/` is missing" for folder in sorted(folders - named)]
    for name in sorted(named):
        if "*" in name:
            continue
        if name not in folders and not os.path.exists(os.path.join(ROOT, name)):
            problems.append(f"README.md layout table: `{name}` does not exist")
    return problems


def main():
    files = tracked()
    problems = []
    for crate in module_cycles.crates():
        for cycle in module_cycles.crate_cycles(crate):
            problems.append(f"{os.path.basename(crate)}: modules in a circle: {' <-> '.join(cycle)}")
    problems += long_files(files)
    problems += layout_mismatches(files)
    for problem in problems:
        print(problem)
    if problems:
        return 1
    print("no module circles, no file over 600 lines, the layout table matches the tree")
    return 0


if __name__ == "__main__":
    sys.exit(main())

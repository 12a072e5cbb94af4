#!/usr/bin/env python3
"""Finds circles of `use` dependencies between the modules of each crate of the workspace.

A module depends on another when its file names it through `crate::…` or `super::…` (in a `use`
line or inline). A module naming its own ancestor or descendant is not counted: a parent declares
and re-exports its children, and a child may use its parent's items, as Rust intends. Prints every
strongly connected component of two or more modules, one line each, and exits 1 when there is one.

Usage: scripts/module_cycles.py [crate folder …]   (default: every crate with a src/ folder)
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def module_files(src):
    """Maps module paths (tuples) to files, for lib.rs or main.rs and everything below them."""
    modules = {}
    for directory, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(directory, name)
            rel = os.path.relpath(path, src)[:-3].split(os.sep)
            if rel[0] == "bin":
                continue
            if rel[-1] in ("lib", "main") and len(rel) == 1:
                rel = []
            elif rel[-1] == "mod":
                rel = rel[:-1]
            modules[tuple(rel)] = path
    return modules


def strip_comments(text):
    # A file's unit tests are a module of their own, below it, and may use anything.
    text = re.split(r"#\[cfg\(test\)\]\s*mod\s+tests\b", text)[0]
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    return text


def use_trees(text):
    """Yields the paths a file names: every `use` tree flattened, and inline crate::/super:: paths."""
    for match in re.finditer(r"\buse\s+([^;]+);", text):
        yield from flatten(match.group(1).replace("\n", " "))
    for match in re.finditer(r"(?<![\w:])((?:crate|super|self)(?:::\w+)+)", text):
        yield match.group(1).split("::")


def flatten(tree, prefix=()):
    tree = tree.strip()
    if not tree:
        return
    depth = 0
    parts, current = [], ""
    for char in tree:
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    if len(parts) > 1:
        for part in parts:
            yield from flatten(part, prefix)
        return
    tree = parts[0].strip()
    brace = tree.find("{")
    if brace >= 0 and tree.endswith("}"):
        head = [p for p in tree[:brace].split("::") if p.strip()]
        yield from flatten(tree[brace + 1 : -1], prefix + tuple(p.strip() for p in head))
        return
    tree = re.sub(r"\s+as\s+\w+$", "", tree)
    yield list(prefix) + [p.strip() for p in tree.split("::") if p.strip()]


def resolve(path, here, modules):
    """The module a path names, or None when it leaves the crate."""
    if not path:
        return None
    if path[0] == "crate":
        base, rest = (), path[1:]
    elif path[0] in ("super", "self"):
        base = here
        rest = list(path)
        while rest and rest[0] in ("super", "self"):
            if rest[0] == "super":
                base = base[:-1]
            rest = rest[1:]
    else:
        return None
    best = base if base in modules else None
    for i in range(1, len(rest) + 1):
        candidate = tuple(base) + tuple(rest[:i])
        if candidate in modules:
            best = candidate
    return best


def related(a, b):
    return a[: len(b)] == b or b[: len(a)] == a


def components(graph):
    index, low, stack, on_stack, result = {}, {}, [], set(), []
    counter = [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    sys.setrecursionlimit(10000)
    for node in list(graph):
        if node not in index:
            visit(node)
    return result


def crate_cycles(crate):
    src = os.path.join(crate, "src")
    modules = module_files(src)
    graph = {}
    for module, path in modules.items():
        with open(path, encoding="utf-8") as handle:
            text = strip_comments(handle.read())
        for used in use_trees(text):
            target = resolve(used, module, modules)
            if target is None or related(target, module):
                continue
            graph.setdefault(module, set()).add(target)
    return [["::".join(m) or "crate" for m in c] for c in components(graph)]


def crates():
    """Every crate folder of the repository (a folder with a src/)."""
    return sorted(
        os.path.join(ROOT, d)
        for d in os.listdir(ROOT)
        if os.path.isdir(os.path.join(ROOT, d, "src"))
    )


def main():
    crates_to_check = sys.argv[1:] or crates()
    found = 0
    for crate in crates_to_check:
        for cycle in crate_cycles(crate):
            found += 1
            print(f"{os.path.basename(crate.rstrip('/'))}: {' <-> '.join(cycle)}")
    if found:
        print(f"{found} circle(s) of module dependencies")
        return 1
    print("no circles between modules")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""The shape of the Rust code, checked: no import cycle between modules, no oversized file.

    python3 tests/layout.py            # check; exit 1 with what is wrong
    python3 tests/layout.py --graph    # also print every module's dependencies

A cycle is judged the way a reader meets one: two sibling modules (say `auth` and `cli`, or
`web::ui::login` and `web::ui::view`) that each use the other, directly or around a longer
ring. A path `crate::a::b::c` used in `x/y.rs` is an edge from `x::y` to the longest module it
names (`a::b` when `c` is an item); both ends are then lifted to the children of their nearest
common ancestor, so `auth::secret -> commands` counts as `auth -> commands`. A module using its
own parent or child is containment, not a cycle.

Also: every file under `src/` has at most MAX_LINES lines (tests beside the code excluded),
except the tables listed in LONG_TABLES, and each crate's `main.rs` stays under MAX_MAIN; every
file of the test package (`tests/`) has at most MAX_TEST_LINES; the nester names the harvester
crate only in its demo (the optional feature `demo`), so the central server does not grow a
dependency on the scanner by accident; and the layers the nester's ARCHITECTURE.md promises
hold (FORBIDDEN): pages and CLI commands call operations (`ops`), never the API's handlers;
operations know no transport; only `db` names rusqlite (only it runs SQL).
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CRATES = ["nester", "harvester", "shared"]
MAX_LINES = 450
MAX_MAIN = 100
# Files that are long because they are one table, not one long thought.
LONG_TABLES = {
    "harvester/src/scan/top_ports.rs",
}
# The only nester files that may use the harvester crate.
HARVESTER_USERS = {"nester/src/cli/demo.rs"}
MAX_TEST_LINES = 500
# (user, used, why): a nester module that must never use another.
FORBIDDEN = [
    (("web", "ui"), ("web", "api"), "pages call operations (ops), not the API's handlers"),
    (("cli",), ("web",), "commands call operations (ops), not the web edge"),
    (("ops",), ("web",), "operations know no transport"),
    (("ops",), ("cli",), "operations know no transport"),
]

PATH = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
GROUP = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{")


def module_of(src: Path, file: Path) -> tuple:
    parts = list(file.relative_to(src).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts.pop()
    return tuple(parts)


def strip_tests(text: str) -> str:
    """The file without its `#[cfg(test)] mod tests { ... }` block (tests may use anything)."""
    marker = re.search(r"#\[cfg\(test\)\]\s*(?:pub(?:\([a-z]+\))?\s+)?mod\s+\w+\s*\{", text)
    if not marker:
        return text
    depth, i = 0, marker.end() - 1
    while i < len(text):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[: marker.start()] + strip_tests(text[i + 1 :])
        i += 1
    return text[: marker.start()]


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def group_items(text: str, start: int) -> list:
    """The paths inside a `use x::{...}` group starting at `start` (after the brace)."""
    depth, i = 1, start
    while i < len(text) and depth:
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    inner = text[start : i - 1]
    out, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    out.append(cur.strip())
    paths = []
    for item in filter(None, out):
        head = re.match(r"([A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)*)", item)
        if head:
            paths.append(head.group(1).split("::"))
    return paths


def references(text: str, here: tuple) -> list:
    """Every module path (as a tuple from the crate root) that `text` names."""
    def absolute(kind: str, rest: list) -> list:
        if kind == "crate":
            return rest
        base = list(here) if kind == "self" else list(here[:-1])
        while rest and rest[0] == "super":
            base, rest = base[:-1], rest[1:]
        return base + rest

    found = []
    for m in PATH.finditer(text):
        found.append(absolute(m.group(1), m.group(2).split("::")[1:]))
    for m in GROUP.finditer(text):
        prefix = [p for p in m.group(2).split("::")[1:]]
        for item in group_items(text, m.end()):
            found.append(absolute(m.group(1), prefix + item))
    return found


def check_crate(name: str, show: bool) -> list:
    src = ROOT / name / "src"
    files = sorted(src.rglob("*.rs"))
    modules = {module_of(src, f) for f in files}
    edges = {}
    problems = []
    for f in files:
        rel = f.relative_to(ROOT).as_posix()
        full = f.read_text()
        code = strip_tests(full)
        lines = code.count("\n")
        if f.name == "main.rs" and full.count("\n") >= MAX_MAIN:
            problems.append(f"{rel}: {full.count(chr(10))} lines; a main.rs stays under {MAX_MAIN}")
        elif lines > MAX_LINES and rel not in LONG_TABLES:
            problems.append(f"{rel}: {lines} lines without its tests; split it (at most {MAX_LINES})")
        if name == "nester" and rel not in HARVESTER_USERS and re.search(
            r"\bharvester::", strip_comments(code)
        ):
            problems.append(f"{rel}: uses the harvester crate; only {sorted(HARVESTER_USERS)} may")
        if name == "nester" and not rel.startswith("nester/src/db/") and re.search(
            r"\brusqlite::", strip_comments(code)
        ):
            problems.append(f"{rel}: uses rusqlite; only nester/src/db runs SQL")
        here = module_of(src, f)
        for path in references(strip_comments(code), here):
            target = tuple(path)
            while target and target not in modules:
                target = target[:-1]
            if target == here:
                continue
            edges.setdefault(here, set()).add(target)
            for user, used, why in FORBIDDEN if name == "nester" else []:
                if here[: len(user)] == user and target[: len(used)] == used:
                    problems.append(f"{rel}: uses {'::'.join(target)}; {why}")
    # Lift each edge to the children of the two ends' nearest common ancestor.
    siblings = {}
    for a, targets in edges.items():
        for b in targets:
            n = 0
            while n < min(len(a), len(b)) and a[n] == b[n]:
                n += 1
            if n == len(a) or n == len(b):
                continue  # parent and descendant
            siblings.setdefault(a[:n], {}).setdefault(a[n], set()).add(b[n])
    for parent, graph in sorted(siblings.items()):
        if show:
            label = "::".join(parent) or "crate"
            for a in sorted(graph):
                print(f"{name} {label}: {a} -> {', '.join(sorted(graph[a]))}")
        for cycle in cycles(graph):
            where = "::".join((name,) + parent)
            ring = " -> ".join(cycle + [cycle[0]])
            culprits = [
                f"{'::'.join(x)} uses {'::'.join(y)}"
                for x, ys in edges.items()
                for y in ys
                if len(x) > len(parent) and len(y) > len(parent)
                and x[: len(parent)] == parent and y[: len(parent)] == parent
                and x[len(parent)] in cycle and y[len(parent)] in cycle
                and x[len(parent)] != y[len(parent)]
            ]
            problems.append(f"import cycle in {where}: {ring}\n    " + "\n    ".join(sorted(culprits)))
    return problems


def cycles(graph: dict) -> list:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def check_tests() -> list:
    """The test package's files (harness, e2e modules, benchmarks) stay readable."""
    problems = []
    for f in sorted((ROOT / "tests").rglob("*.rs")):
        lines = f.read_text().count("\n")
        if lines > MAX_TEST_LINES:
            rel = f.relative_to(ROOT).as_posix()
            problems.append(f"{rel}: {lines} lines; split it by concept (at most {MAX_TEST_LINES})")
    return problems


def main() -> int:
    show = "--graph" in sys.argv
    problems = [p for c in CRATES for p in check_crate(c, show)] + check_tests()
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"layout: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print("layout: no import cycle, no layer crossed, no oversized file")
    return 0


if __name__ == "__main__":
    sys.exit(main())

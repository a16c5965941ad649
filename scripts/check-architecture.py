#!/usr/bin/env python3
"""Checks that Package.swift tells the truth about the module graph, and that README's
architecture table is the one Package.swift gives.

  python3 scripts/check-architecture.py                 check; exit 1 with the problems listed
  python3 scripts/check-architecture.py --write-readme  regenerate README's table, then check

Rules:
- every `import X` in Sources/<target>/ (or Tests/<target>/, or the target's `path:`), where X
  is a target of this package, is declared in that target's `dependencies:`;
- every declared dependency is imported by at least one of the target's Swift files, except an
  executable target a test target depends on (that only makes the binary be built first) and
  the dependencies of C targets (which have no Swift files to import them);
- a declared `.product(name: P, ...)` counts as imported when some file imports module P;
- the table between `<!-- architecture:begin -->` and `<!-- architecture:end -->` in README.md
  lists every non-test target in Package.swift order with its `// job:` comment (the line
  comment directly above the target in Package.swift) and its declared dependencies.

Standard library and system modules (Foundation, Glibc, Testing, ...) are ignored. Python 3
standard library only, so `make test` can run it before anything is built.
"""
import argparse
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "Package.swift")
README = os.path.join(ROOT, "README.md")
BEGIN, END = "<!-- architecture:begin -->", "<!-- architecture:end -->"

# Modules that come with the toolchain or the OS, never declared as dependencies.
SYSTEM_MODULES = {
    "Foundation", "FoundationEssentials", "FoundationInternationalization", "FoundationNetworking",
    "Glibc", "Musl", "Darwin", "Dispatch", "XCTest", "Testing", "Swift", "_Concurrency",
    "Synchronization", "os", "Observation", "RegexBuilder", "Distributed", "CoreFoundation",
}
TARGET_KINDS = ("target", "executableTarget", "testTarget", "systemLibrary", "binaryTarget", "plugin", "macro")
IMPORT = re.compile(
    r"^\s*(?:@[A-Za-z_]+(?:\([^)]*\))?\s+|(?:public|package|internal|fileprivate|private)\s+)*"
    r"import\s+(?:(?:struct|class|enum|protocol|typealias|func|var|let)\s+)?([A-Za-z_][A-Za-z0-9_]*)")


class Target:
    def __init__(self, kind, name, deps, products, path, job):
        self.kind, self.name, self.deps, self.products, self.path, self.job = kind, name, deps, products, path, job

    @property
    def directory(self):
        if self.path:
            return os.path.join(ROOT, self.path)
        return os.path.join(ROOT, "Tests" if self.kind == "testTarget" else "Sources", self.name)


def skip_string_or_comment(text, i):
    """If a string literal or comment starts at i, the index just after it; else None."""
    if text.startswith("//", i):
        end = text.find("\n", i)
        return len(text) if end == -1 else end
    if text.startswith("/*", i):
        end = text.find("*/", i + 2)
        return len(text) if end == -1 else end + 2
    if text.startswith('"""', i):
        end = text.find('"""', i + 3)
        return len(text) if end == -1 else end + 3
    if text[i] == '"':
        j = i + 1
        while j < len(text) and text[j] != '"':
            j += 2 if text[j] == "\\" else 1
        return j + 1
    return None


def matching(text, open_index):
    """Index of the bracket closing the one at open_index, skipping strings and comments."""
    pairs = {"(": ")", "[": "]", "{": "}"}
    stack = [pairs[text[open_index]]]
    i = open_index + 1
    while i < len(text):
        after = skip_string_or_comment(text, i)
        if after is not None:
            i = after
            continue
        c = text[i]
        if c in pairs:
            stack.append(pairs[c])
        elif c in ")]}":
            if c != stack.pop():
                sys.exit(f"check-architecture: unbalanced '{c}' in Package.swift at offset {i}")
            if not stack:
                return i
        i += 1
    sys.exit("check-architecture: unbalanced brackets in Package.swift")


def top_level_calls(text, start, end):
    """(kind, body start, body end, call start) of each `.kind(...)` at depth 0 in text[start:end]."""
    calls, i = [], start
    while i < end:
        after = skip_string_or_comment(text, i)
        if after is not None:
            i = after
            continue
        m = re.compile(r"\.([A-Za-z]+)\s*\(").match(text, i)
        if m:
            close = matching(text, m.end() - 1)
            calls.append((m.group(1), m.end(), close, i))
            i = close + 1
            continue
        if text[i] in "([{":
            i = matching(text, i) + 1
            continue
        i += 1
    return calls


def string_argument(body, label):
    m = re.search(r"\b" + label + r"\s*:\s*\"([^\"]*)\"", body)
    return m.group(1) if m else None


def parse_package():
    text = open(PACKAGE, encoding="utf-8").read()
    # The package's `targets: [...]`, not a product's `targets: ["hypertrain"]`.
    calls = []
    for m in re.finditer(r"\btargets\s*:\s*\[", text):
        calls = top_level_calls(text, m.end(), matching(text, m.end() - 1))
        if any(kind in TARGET_KINDS for kind, *_ in calls):
            break
    else:
        sys.exit("check-architecture: no `targets: [.target(...), ...]` in Package.swift")
    targets = []
    for kind, body_start, body_end, call_start in calls:
        if kind not in TARGET_KINDS:
            continue
        body = text[body_start:body_end]
        name = string_argument(body, "name")
        deps, products = [], []
        dm = re.search(r"\bdependencies\s*:\s*\[", body)
        if dm:
            d_open = body_start + dm.end() - 1
            d_close = matching(text, d_open)
            inner = text[d_open + 1:d_close]
            for item_kind, b0, b1, _ in top_level_calls(text, d_open + 1, d_close):
                item = text[b0:b1]
                if item_kind == "product":
                    products.append((string_argument(item, "name"), string_argument(item, "package")))
                elif item_kind in ("target", "byName"):
                    deps.append(string_argument(item, "name"))
            # Plain string entries ("Linalg") at the top level of the array.
            stripped = re.sub(r"\.[A-Za-z]+\s*\((?:[^()]|\([^()]*\))*\)", "", inner)
            stripped = re.sub(r"//[^\n]*", "", stripped)
            deps += re.findall(r"\"([^\"]+)\"", stripped)
        # The `// job:` line comment(s) directly above the call.
        job_lines = []
        for line in reversed(text[:call_start].split("\n")[:-1]):
            s = line.strip()
            if s.startswith("// job:"):
                job_lines.insert(0, s[len("// job:"):].strip())
                break
            if s.startswith("//") and job_lines == []:
                continue   # an ordinary comment between the job line and the call
            break
        targets.append(Target(kind, name, deps, products, string_argument(body, "path"), " ".join(job_lines) or None))
    return targets


def imports_of(target):
    """Module name → first file:line importing it, over the target's Swift files."""
    found = {}
    for directory, _, files in os.walk(target.directory):
        for file in sorted(files):
            if not file.endswith(".swift"):
                continue
            path = os.path.join(directory, file)
            in_block = False
            for number, line in enumerate(open(path, encoding="utf-8"), 1):
                if in_block:
                    if "*/" in line:
                        in_block = False
                    continue
                if line.lstrip().startswith("/*") and "*/" not in line:
                    in_block = True
                    continue
                m = IMPORT.match(line)
                if m:
                    found.setdefault(m.group(1), f"{os.path.relpath(path, ROOT)}:{number}")
    return found


def check(targets):
    problems = []
    by_name = {t.name: t for t in targets}
    for t in targets:
        if t.kind in ("systemLibrary", "binaryTarget"):
            continue
        has_swift = any(f.endswith(".swift") for _, _, fs in os.walk(t.directory) for f in fs)
        if not has_swift:
            continue   # a C target: its dependencies are for the C compiler and linker
        imported = imports_of(t)
        product_modules = {p for p, _ in t.products}
        for module, where in sorted(imported.items()):
            if module in SYSTEM_MODULES or module in product_modules or module == t.name:
                continue
            if module in by_name:
                if module not in t.deps:
                    problems.append(f"{t.name}: imports {module} ({where}) but does not declare it in Package.swift")
            else:
                problems.append(f"{t.name}: imports {module} ({where}), which is neither a target of this package, "
                                f"a declared .product, nor a system module")
        for dep in t.deps:
            if dep not in by_name:
                problems.append(f"{t.name}: depends on {dep}, which is not a target in Package.swift")
            elif dep not in imported and not (t.kind == "testTarget" and by_name[dep].kind == "executableTarget"):
                problems.append(f"{t.name}: declares {dep} but no Swift file of {t.name} imports it")
        for product, package in t.products:
            if product not in imported:
                problems.append(f"{t.name}: declares .product(name: \"{product}\", package: \"{package}\") "
                                f"but no Swift file imports {product}")
    for t in targets:
        if t.kind != "testTarget" and not t.job:
            problems.append(f"{t.name}: no `// job: ...` comment directly above it in Package.swift (README's table needs it)")
    return problems


def table(targets):
    rows = ["| module | job | imports |", "|---|---|---|"]
    for t in targets:
        if t.kind == "testTarget":
            continue
        imports = list(t.deps) + [f"{p} ({pkg})" for p, pkg in t.products]
        rows.append(f"| `{t.name}` | {t.job or ''} | {', '.join(imports) or '—'} |")
    return "\n".join(rows)


def readme_parts():
    text = open(README, encoding="utf-8").read()
    b, e = text.find(BEGIN), text.find(END)
    if b == -1 or e == -1 or e < b:
        sys.exit(f"check-architecture: README.md has no {BEGIN} … {END} markers around the architecture table")
    return text[:b + len(BEGIN)], text[b + len(BEGIN):e], text[e:]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write-readme", action="store_true", help="regenerate README's architecture table")
    args = parser.parse_args()
    targets = parse_package()
    expected = "\n" + table(targets) + "\n"
    head, current, tail = readme_parts()
    if args.write_readme and current != expected:
        open(README, "w", encoding="utf-8").write(head + expected + tail)
        current = expected
        print("check-architecture: README.md architecture table regenerated")
    problems = check(targets)
    if current != expected:
        problems.append("README.md's architecture table differs from Package.swift; "
                        "run `python3 scripts/check-architecture.py --write-readme`")
    if problems:
        print("check-architecture: Package.swift does not tell the truth:", file=sys.stderr)
        for p in problems:
            print("  " + p, file=sys.stderr)
        return 1
    print(f"check-architecture: {len(targets)} targets; every import declared, every dependency used, README table current")
    return 0


if __name__ == "__main__":
    sys.exit(main())

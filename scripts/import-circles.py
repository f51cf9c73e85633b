#!/usr/bin/env python3
"""Finds import circles between the files of a Rust crate and exits 1 when there is one.

An import circle: file A uses a definition from file B while B (directly, or through other files of
the same crate) uses one from A. Such files cannot be read, moved or tested one without the other;
the fix is to move each definition to the file that owns it.

Crates: the package in src/ (library root src/lib.rs; each binary under src/bin/NAME/main.rs or
src/bin/NAME.rs is a crate of its own) and every crates/*/src (root lib.rs).

What counts as a use of file B by file A:
- every `use crate::…`, `use super::…` and `use self::…` declaration in A, and every path written
  in A's code that starts with `crate::`, `super::` or `self::` (a call such as
  `super::problem::sort_by_line(…)`), resolved to the deepest module that is a file of the crate
  (`a/b.rs` or `a/b/mod.rs`): `use super::{Event, Problem}` in `data/recbole.rs` uses `data/mod.rs`,
  `super::problem::sort_by_line` uses `data/problem.rs`. Inline modules (`mod tests { use super::*; }`)
  are followed, so `super` means what the compiler says it means; their uses belong to their file.
- Not counted: paths into other crates (`omakase_runtime::…`, or `crate::runtime::…` where
  `runtime` is a re-exported crate and no file), comments, strings, and `macro_rules!` bodies (a
  macro's paths resolve where it expands; the expanding file already names the macro's file).

The parent rule. A module file (`mod.rs`, `lib.rs`, or `a.rs` with an `a/` folder) that re-exports
its own descendants — `pub use child::Item;`, `pub(crate) use child::{…};` — is not using them: the
re-export is the folder's public face, like the `mod child;` line that makes the child exist, and
the children using definitions that live in the parent file (`use super::{Dataset, Event}`) is then
the ordinary direction. So an edge from a parent to its own descendant through a `pub`/`pub(…)`
re-export is left out. A private `use child::X` in the parent, or a path `child::f(…)` in the
parent's code, is a real use and counts: if that child also uses the parent, it is a circle.

Output: one line per circle (the files, in order, back to the first), then a count; exit status 1
when any circle is found, 0 otherwise.
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def strip_code(text):
    """Comments, string and char literals blanked out (lengths kept), so paths in them are ignored."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            hashes = re.match(r"r(#*)\"", text[i:]).group(1)
            end = text.find('"' + hashes, i + 2 + len(hashes))
            end = n if end < 0 else end + 1 + len(hashes)
            out.append(re.sub(r"[^\n]", " ", text[i:end]))
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(re.sub(r"[^\n]", " ", text[i : j + 1]))
            i = j + 1
        elif c == "'":
            # A char literal ('a', '\n', '\u{1F600}') or a lifetime ('a): only blank the literal.
            m = re.match(r"'(\\.[^']*|[^\\'])'", text[i:])
            if m:
                out.append(" " * len(m.group(0)))
                i += len(m.group(0))
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def blank_macro_rules(code):
    """`macro_rules! name { … }` bodies blanked out (their paths resolve where they expand)."""
    out = list(code)
    for m in re.finditer(r"macro_rules!\s*\w+\s*([{(\[])", code):
        open_c = m.group(1)
        close_c = {"{": "}", "(": ")", "[": "]"}[open_c]
        depth, j = 0, m.start(1)
        while j < len(code):
            if code[j] == open_c:
                depth += 1
            elif code[j] == close_c:
                depth -= 1
                if depth == 0:
                    break
            j += 1
        for k in range(m.start(1), min(j + 1, len(code))):
            if out[k] != "\n":
                out[k] = " "
    return "".join(out)


def crate_files(src_root, root_file):
    """{module path tuple: file} for one crate, following `mod x;` declarations from the root."""
    files = {}

    def visit(module, path):
        files[module] = path
        code = blank_macro_rules(strip_code(path.read_text()))
        is_dir_owner = path.name in ("mod.rs", "lib.rs", "main.rs")
        base = path.parent if is_dir_owner else path.parent / path.stem
        for m in re.finditer(r"(?:#\[path\s*=\s*\"([^\"]+)\"\]\s*)?\bmod\s+(\w+)\s*;", code):
            name = m.group(2)
            for candidate in (base / f"{name}.rs", base / name / "mod.rs"):
                if candidate.is_file():
                    visit(module + (name,), candidate)
                    break

    visit((), root_file)
    return files


def split_use_tree(tree):
    """`a::{b, c::{d, self}}` → [a::b, a::c::d, a::c] (as segment lists, `as` renames dropped)."""
    tree = re.sub(r"\s+", "", tree)
    results = []

    def expand(prefix, t):
        if "{" not in t:
            t = re.sub(r"as\w+$", "", t) if re.search(r"[^:]as\w+$", t) else t
            segs = [s for s in t.split("::") if s]
            if segs and segs[-1] == "self":
                segs = segs[:-1]
            results.append(prefix + segs)
            return
        head, rest = t.split("{", 1)
        inner = rest[: rest.rfind("}")]
        head_segs = [s for s in head.split("::") if s]
        depth, start = 0, 0
        for i, ch in enumerate(inner + ","):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                part = inner[start:i]
                if part:
                    expand(prefix + head_segs, part)
                start = i + 1

    expand([], tree)
    return results


def module_at(code, pos, inline_mods):
    """The inline module path (inside the file) at offset `pos`."""
    return [name for (start, end, name) in inline_mods if start < pos < end]


def inline_modules(code):
    """(body start, body end, name) of every inline `mod name { … }`, outermost first."""
    found = []
    for m in re.finditer(r"\bmod\s+(\w+)\s*\{", code):
        depth, j = 0, m.end() - 1
        while j < len(code):
            if code[j] == "{":
                depth += 1
            elif code[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        found.append((m.end() - 1, j, m.group(1)))
    return found


def resolve(segs, here, files):
    """The file a path (segments from `crate`/`super`/`self`) uses, or None when it leaves the crate."""
    module = list(here)
    i = 0
    if segs and segs[0] == "crate":
        module, i = [], 1
    while i < len(segs) and segs[i] in ("super", "self"):
        if segs[i] == "super":
            if not module:
                return None
            module.pop()
        i += 1
    target = tuple(module)
    for seg in segs[i:]:
        if target + (seg,) in files:
            target = target + (seg,)
        else:
            break
    # An inline module: the file that holds it.
    while target not in files and target:
        target = target[:-1]
    return target


def crate_edges(files):
    """{file module: {used file module: [reasons]}} with the parent rule applied."""
    edges = {}
    for module, path in files.items():
        code = blank_macro_rules(strip_code(path.read_text()))
        mods = inline_modules(code)
        uses = {}
        covered = []
        for m in re.finditer(r"\b(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", code):
            covered.append((m.start(), m.end()))
            tree = m.group(2)
            here = module + tuple(module_at(code, m.start(), mods))
            public = m.group(1) is not None
            for segs in split_use_tree(tree):
                if not segs or segs[0] not in ("crate", "super", "self"):
                    # A path relative to the module (`use child::X;` in a parent, 2018 edition).
                    if segs and here + (segs[0],) in files:
                        segs = ["self"] + segs
                    else:
                        continue
                target = resolve(segs, here, files)
                if target is None or target == module:
                    continue
                if public and target[: len(module)] == module:
                    continue  # the parent rule: re-exporting a descendant
                uses.setdefault(target, []).append("use " + "::".join(segs))
        for m in re.finditer(r"(?<![\w:])((?:crate|super|self)(?:::\w+)+)", code):
            if any(a <= m.start() < b for a, b in covered):
                continue
            segs = m.group(1).split("::")
            here = module + tuple(module_at(code, m.start(), mods))
            target = resolve(segs, here, files)
            if target is None or target == module:
                continue
            uses.setdefault(target, []).append(m.group(1))
        # A parent naming a child's path in code (`child::f()`): relative paths are not scanned;
        # a parent's private `use child::…` is caught above.
        edges[module] = uses
    return edges


def cycles(edges):
    """Strongly connected components with more than one file (Tarjan), each as one cycle path."""
    index, low, stack, on_stack, comps, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(comp)

    for v in sorted(edges):
        if v not in index:
            strong(v)
    found = []
    for comp in comps:
        members = set(comp)
        start = min(comp)
        # A shortest way back to `start` inside the component, for the message.
        prev, frontier, seen = {}, [start], {start}
        path = None
        while frontier and path is None:
            nxt = []
            for v in frontier:
                for w in sorted(edges.get(v, {})):
                    if w not in members:
                        continue
                    if w == start:
                        path = [v]
                        while path[-1] != start:
                            path.append(prev[path[-1]])
                        path.reverse()
                        break
                    if w not in seen:
                        seen.add(w)
                        prev[w] = v
                        nxt.append(w)
                if path:
                    break
            frontier = nxt
        found.append((sorted(comp), path or sorted(comp)))
    return found


def crates():
    """(name, src folder, root file) of every crate checked."""
    out = []
    if (ROOT / "src/lib.rs").is_file():
        out.append(("omakase", ROOT / "src", ROOT / "src/lib.rs"))
    for main in sorted((ROOT / "src/bin").glob("*/main.rs")):
        out.append((f"bin {main.parent.name}", main.parent, main))
    for single in sorted((ROOT / "src/bin").glob("*.rs")):
        out.append((f"bin {single.stem}", single.parent, single))
    for lib in sorted(ROOT.glob("crates/*/src/lib.rs")):
        out.append((lib.parent.parent.name, lib.parent, lib))
    return out


def main():
    total = 0
    for name, _src, root_file in crates():
        files = crate_files(root_file.parent, root_file)
        edges = crate_edges(files)
        for _members, path in cycles(edges):
            total += 1
            names = [str(files[m].relative_to(ROOT)) for m in path]
            steps = []
            for a, b in zip(path, path[1:] + path[:1]):
                how = edges[a].get(b, ["?"])[0]
                steps.append(f"{files[a].relative_to(ROOT)} -> {files[b].relative_to(ROOT)} ({how})")
            print(f"{name}: circle {' -> '.join(names + names[:1])}")
            if len(_members) > len(path):
                print(f"    (tangled with: {', '.join(str(files[m].relative_to(ROOT)) for m in _members if m not in path)})")
            for step in steps:
                print(f"    {step}")
    print(f"{total} import circle(s)")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Measured figures in the docs come from results files, never from hand-pasted text.

The benches write one results file per run, docs/results/<bench>-<UTC time>.json (see
crates/e2e/src/results.rs): what they measured, with the date, commit, machine and command.
A doc quotes a run only through a block this script renders from that file:

    <!-- results:<stem> -->
    (generated: provenance line, the bench's report, links to what else the run wrote)
    <!-- /results -->

`hack/check-doc-figures.py` (make lint) fails when
  * a block differs from what its results file renders, or names no results file;
  * a quantity appears in README.md or docs/**/*.md outside such blocks, unless
    hack/doc-figures-stated.tsv lists the phrase it stands in as stated, not measured (a
    setting, a limit, a goal, a test's input), or it is inside a block generated from source
    (`<!-- NAME:begin (generated from PATH) -->` ... `<!-- NAME:end -->`);
  * an entry of hack/doc-figures-stated.tsv matches nothing (so the list cannot go stale).
`hack/check-doc-figures.py --write` renders every block again from its results file.

A quantity is a number followed by a unit of time (ns, µs, ms, s, min, h, seconds, ...), of
size (B, bytes, KiB, MiB, GiB, kB, MB, GB, ...), a ratio (86x) or a percentage: in prose,
tables and code blocks alike. Numbers without a unit (counts) are not quantities, and `12s`
with no space (kubectl's AGE column, `--timeout=120s`) is not one either; write measured
durations with a space (`12 s`) so that the check sees them.
"""

import argparse
import json
import os
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "results"
STATED = ROOT / "hack" / "doc-figures-stated.tsv"

BLOCK = re.compile(r"<!-- results:([A-Za-z0-9._-]+) -->(.*?)<!-- /results -->", re.S)
# An opening marker; `<!-- results:<stem> -->` (a placeholder in prose) is none.
OPENING = re.compile(r"<!-- results:[^<>\s]")
SOURCE_BLOCK = re.compile(
    r"<!-- ([a-z0-9-]+):begin \(generated from [^)]*\) -->.*?<!-- \1:end -->", re.S
)
NUMBER = r"(?<![\w.,/-])\d+(?:,\d{3})*(?:\.\d+)?"
SPACED_UNIT = (
    r"(?:ns|µs|us|ms|s|secs?|seconds?|min|mins|minutes?|h|hours?|days?"
    r"|B|bytes?|KiB|MiB|GiB|TiB|kB|KB|MB|GB|TB)"
)
GLUED_UNIT = r"(?:ns|µs|ms|KiB|MiB|GiB|TiB|kB|MB|GB)"
QUANTITY = re.compile(
    NUMBER
    + r"(?:[ \u00a0]+"
    + SPACED_UNIT
    + r"(?![\w/])|"
    + GLUED_UNIT
    + r"(?![\w/])|[x×](?!\w)|[ \u00a0]?%)"
)
REQUIRED = ("bench", "date", "commit", "machine", "command", "figures", "summary", "report")


def docs():
    yield ROOT / "README.md"
    yield from sorted((ROOT / "docs").rglob("*.md"))


def rel(path):
    return path.relative_to(ROOT).as_posix()


class Failure(Exception):
    pass


def load_results(stem):
    path = RESULTS / f"{stem}.json"
    if not path.is_file():
        raise Failure(f"no results file {rel(path)}")
    try:
        data = json.loads(path.read_text())
    except ValueError as e:
        raise Failure(f"{rel(path)} is not JSON: {e}") from e
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise Failure(f"{rel(path)} lacks {', '.join(missing)}")
    return path, data


def duration_text(seconds):
    seconds = round(seconds)
    minutes, s = divmod(seconds, 60)
    return f"{minutes} min {s} s" if minutes else f"{s} s"


def render(stem, doc):
    """The block's body for results file `stem`, as seen from the doc `doc`."""
    path, r = load_results(stem)
    link = pathlib.PurePosixPath(os.path.relpath(path, doc.parent))
    m = r["machine"]
    machine = [f"{m.get('nproc', '?')} cores"]
    if m.get("mem_kib"):
        machine.append(f"{m['mem_kib'] / 1048576:.1f} GiB")
    if m.get("kernel"):
        machine.append(f"Linux {m['kernel']}")
    if m.get("cpu"):
        machine.append(m["cpu"])
    if m.get("loadavg"):
        machine.append(f"load {m['loadavg']} at the end")
    took = f" (took {duration_text(r['duration_s'])})" if "duration_s" in r else ""
    dirty = " with uncommitted changes" if r.get("dirty") else ""
    lines = [
        f"Measured {r['date']}{took} at commit {r['commit'][:12]}{dirty}, on "
        f"{', '.join(machine)}, by `{r['command']}` "
        f"([{path.name}]({link})):",
        "",
    ]
    fence = "```"
    while fence in r["report"]:
        fence += "`"
    lines += [fence + "text", r["report"], fence]
    files = r.get("files") or []
    if files:
        links = [
            f"[{pathlib.PurePosixPath(f).stem}]({link.parent / f})" for f in files
        ]
        lines += ["", "Plots: " + ", ".join(links) + "."]
    return "\n" + "\n".join(lines) + "\n"


def normalized(text):
    """`text` with every run of whitespace made one space, and each character's offset in
    `text` (for line numbers)."""
    out, where, space = [], [], False
    for i, c in enumerate(text):
        if c.isspace():
            if not space:
                out.append(" ")
                where.append(i)
            space = True
        else:
            out.append(c)
            where.append(i)
            space = False
    return "".join(out), where


def load_stated(errors):
    entries = []
    for n, line in enumerate(STATED.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 3 or not all(p.strip() for p in parts):
            errors.append(f"{rel(STATED)}:{n}: want FILE<TAB>PHRASE<TAB>WHY")
            continue
        file, phrase, _why = (p.strip() for p in parts)
        if not QUANTITY.search(phrase):
            errors.append(f"{rel(STATED)}:{n}: {phrase!r} holds no quantity")
            continue
        entries.append({"line": n, "file": file, "phrase": phrase, "used": False})
    return entries


def check_quantities(path, text, stated, errors):
    exempt = [(m.start(), m.end()) for m in BLOCK.finditer(text)]
    exempt += [(m.start(), m.end()) for m in SOURCE_BLOCK.finditer(text)]
    flat, where = normalized(text)
    covered = [False] * len(flat)
    for e in stated:
        if e["file"] != rel(path):
            continue
        for m in re.finditer(re.escape(e["phrase"]), flat):
            e["used"] = True
            for i in range(m.start(), m.end()):
                covered[i] = True
    for m in QUANTITY.finditer(flat):
        at = where[m.start()]
        if any(a <= at < b for a, b in exempt) or all(covered[m.start() : m.end()]):
            continue
        line = text.count("\n", 0, at) + 1
        context = flat[max(0, m.start() - 50) : m.end() + 20]
        errors.append(
            f"{rel(path)}:{line}: {m.group(0)!r} looks measured but comes from no results "
            f"file (...{context}...): quote it from a results block, or list its phrase in "
            f"{rel(STATED)} if it is a setting, limit, goal or test input"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--write", action="store_true", help="render every results block again"
    )
    args = parser.parse_args()
    errors = []
    stated = load_stated(errors)
    for path in docs():
        text = path.read_text()
        rendered = text
        blocks = list(BLOCK.finditer(text))
        if len(OPENING.findall(text)) != len(blocks):
            errors.append(
                f"{rel(path)}: a `<!-- results:<stem> -->` without its `<!-- /results -->`, "
                f"or a stem other than letters, digits, '.', '_' and '-'"
            )
        for m in reversed(blocks):
            stem, body = m.group(1), m.group(2)
            line = text.count("\n", 0, m.start()) + 1
            try:
                want = render(stem, path)
            except Failure as e:
                errors.append(f"{rel(path)}:{line}: block results:{stem}: {e}")
                continue
            if body != want:
                if args.write:
                    rendered = rendered[: m.start(2)] + want + rendered[m.end(2) :]
                else:
                    errors.append(
                        f"{rel(path)}:{line}: block results:{stem} is not what its results "
                        f"file renders: run hack/check-doc-figures.py --write"
                    )
        if rendered != text:
            path.write_text(rendered)
            print(f"rendered the results blocks of {rel(path)}")
        check_quantities(path, rendered, stated, errors)
    for e in stated:
        if not e["used"]:
            errors.append(
                f"{rel(STATED)}:{e['line']}: {e['phrase']!r} is no longer in {e['file']}: "
                f"remove the entry"
            )
    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        print(
            f"check-doc-figures: {len(errors)} problem(s); see {rel(pathlib.Path(__file__))}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

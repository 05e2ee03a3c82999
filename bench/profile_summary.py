"""Summarise py-spy raw (collapsed-stack) profiles: where the samples went.

`py-spy record -f raw` writes one line per distinct stack, `frame;frame;...;leaf COUNT`,
each frame `function (file:line)`. For each profile this prints

* self: the leaf frames (where the CPU actually was, including C code called there);
* shoal self: for each sample, the innermost frame in Shoal's own code (`shoal/`), i.e.
  which line of ours is responsible, whatever library it was in at the time;
* inclusive: every function on the stack (counted once per sample).

Seconds are samples / rate (200 Hz by default): thread-seconds, so a busy thread
for a 10 s profile shows 10 s; the commit, reader and loop threads add up.

Run alone: python bench/profile_summary.py FILE_OR_DIR [--top N] [--rate HZ]
"""

from __future__ import annotations

import argparse
import os
import re
from collections import Counter

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


def _short(path: str) -> str:
    i = path.rfind("/shoal/")
    if i >= 0:
        return path[i + 1:]
    for marker in ("/site-packages/", "/lib/python3.11/"):
        j = path.find(marker)
        if j >= 0:
            return path[j + len(marker):]
    return path


def _parse_frame(text: str) -> tuple[str, str, str]:
    m = _FRAME.match(text.strip())
    if not m:
        return text.strip(), "", ""
    return m["func"], _short(m["file"]), m["line"] or ""


def load(path: str) -> list[tuple[list[tuple[str, str, str]], int]]:
    stacks = []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            stacks.append(([_parse_frame(fr) for fr in stack.split(";")], int(count)))
    return stacks


def summarize(path: str, top: int = 15, rate: float = 200.0) -> str:
    stacks = load(path)
    total = sum(n for _, n in stacks)
    leaf: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    for frames, n in stacks:
        func, file, line = frames[-1]
        leaf[f"{func} ({file}:{line})"] += n
        mine = next((fr for fr in reversed(frames) if fr[1].startswith("shoal/")), None)
        ours["(no shoal frame) " + f"{func} ({file})" if mine is None else f"{mine[0]} ({mine[1]}:{mine[2]})"] += n
        for key in {f"{fn} ({fl})" for fn, fl, _ in frames}:
            incl[key] += n
    out = [f"== {os.path.basename(path)}: {total} samples = {total / rate:.1f} thread-s"]
    for title, counter in (("self (leaf frame)", leaf), ("shoal self (innermost shoal/ frame)", ours),
                           ("inclusive (function on stack)", incl)):
        out.append(f"-- {title}")
        for key, n in counter.most_common(top):
            out.append(f"{100 * n / max(total, 1):6.1f}% {n / rate:7.2f}s  {key}")
    return "\n".join(out)


def summarize_dir(directory: str, top: int = 15, rate: float = 200.0) -> str:
    parts = [summarize(os.path.join(directory, name), top, rate)
             for name in sorted(os.listdir(directory)) if name.endswith(".txt") and name != "summary.txt"]
    text = "\n\n".join(parts)
    with open(os.path.join(directory, "summary.txt"), "w") as f:
        f.write(text + "\n")
    return text


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("path")
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--rate", type=float, default=200.0)
    args = p.parse_args()
    if os.path.isdir(args.path):
        print(summarize_dir(args.path, args.top, args.rate))
    else:
        print(summarize(args.path, args.top, args.rate))


if __name__ == "__main__":
    main()

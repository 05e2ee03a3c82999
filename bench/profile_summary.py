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


# Native leaf functions (or the innermost named frame above an unresolved libc address)
# where a thread waits rather than runs: a lock/GIL/condition wait or the event loop's poll.
WAITS = frozenset({"epoll_pwait", "epoll_wait", "PyThread_acquire_lock_timed", "pthread_cond_timedwait",
                   "pthread_cond_wait", "sem_wait", "sem_timedwait", "__futex_abstimed_wait_common", "poll",
                   "select"})


def waiting(frames: list[tuple[str, str, str]]) -> bool:
    """Whether a native stack is a thread waiting (lock, GIL, condition, poll)."""
    named = next((fn for fn, _, _ in reversed(frames) if not fn.startswith("0x")), "")
    return named in WAITS


def _where(func: str, file: str, line: str) -> str:
    """Which library a leaf frame is in: "python" for interpreted code, else the .so / C file."""
    if file.endswith(".py") or file.startswith("<"):
        return "python (interpreted code)"
    if ".so" in file:
        return file.split(".so")[0].rsplit("/", 1)[-1]
    return f"{file} (C source, {func})" if file.endswith(".c") else file


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


def summarize(path: str | list[str], top: int = 15, rate: float = 200.0) -> str:
    """Summary of one profile, or of several merged (e.g. the three OSDs of one workload)."""
    paths = [path] if isinstance(path, str) else path
    stacks = [s for p in paths for s in load(p)]
    native = any(".so" in fl for frames, _ in stacks[:50] for _, fl, _ in frames)
    waited = sum(n for frames, n in stacks if native and waiting(frames))
    if native:  # py-spy --native keeps waiting threads: leave them out of the breakdown
        stacks = [(frames, n) for frames, n in stacks if not waiting(frames)]
    total = sum(n for _, n in stacks)
    leaf: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    libs: Counter[str] = Counter()
    for frames, n in stacks:
        func, file, line = frames[-1]
        libs[_where(func, file, line)] += n
        leaf[f"{func} ({file}:{line})"] += n
        mine = next((fr for fr in reversed(frames) if fr[1].startswith("shoal/")), None)
        ours[f"(no shoal frame) {func} ({file})" if mine is None else f"{mine[0]} ({mine[1]}:{mine[2]})"] += n
        for key in {f"{fn} ({fl})" for fn, fl, _ in frames}:
            incl[key] += n
    name = " + ".join(os.path.basename(p) for p in paths)
    out = [f"== {name}: {total} samples = {total / rate:.1f} thread-s"
           + (f" (native; {waited / rate:.1f} thread-s waiting on locks/GIL/poll left out)" if native else "")]
    sections = [("self (leaf frame)", leaf), ("shoal self (innermost shoal/ frame)", ours),
                ("inclusive (function on stack)", incl)]
    if native:
        sections.insert(0, ("self by library (native profile: C code and syscalls show up)", libs))
    for title, counter in sections:
        out.append(f"-- {title}")
        for key, n in counter.most_common(top):
            out.append(f"{100 * n / max(total, 1):6.1f}% {n / rate:7.2f}s  {key}")
    return "\n".join(out)


def summarize_dir(directory: str, top: int = 15, rate: float = 200.0) -> str:
    """Per workload: the OSDs merged, then the client; written to DIRECTORY/summary.txt."""
    files = sorted(n for n in os.listdir(directory) if n.endswith(".txt") and n != "summary.txt")
    workloads = sorted({n.split(".", 1)[0] for n in files})
    parts = []
    for wl in workloads:
        osds = [os.path.join(directory, n) for n in files if n.startswith(f"{wl}.osd.")]
        if osds:
            parts.append(summarize(osds, top, rate))
        client = os.path.join(directory, f"{wl}.client.txt")
        if os.path.exists(client):
            parts.append(summarize(client, top, rate))
    text = "\n\n".join(parts)
    with open(os.path.join(directory, "summary.txt"), "w") as f:
        f.write(text + "\n")
    return text


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("path", nargs="+", help="a directory, or profile files (merged)")
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--rate", type=float, default=200.0)
    args = p.parse_args()
    if len(args.path) == 1 and os.path.isdir(args.path[0]):
        print(summarize_dir(args.path[0], args.top, args.rate))
    else:
        print(summarize(args.path, args.top, args.rate))


if __name__ == "__main__":
    main()

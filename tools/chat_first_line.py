"""Cold-start time of ``tourline chat``: process start to its first line on stdout.

Each run is a fresh interpreter (``python -m app.cli chat``) with stdin held open, so the
time is to the greeting, not to the end of the conversation. Prints each run and the median.
``--evict`` first drops the Python files of the virtualenv and of ``app/`` from the page
cache (``posix_fadvise``; pages a running process has mapped stay), as after a reboot.

    python tools/chat_first_line.py --runs 5                 # on TOURLINE_DATA_DIR
    python tools/chat_first_line.py --runs 5 --data-dir /tmp/x --evict
    python tools/chat_first_line.py --runs 5 -- --server http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON_FILES = (".py", ".pyc", ".so")


def evict_python_files() -> int:
    """Drop the virtualenv's and ``app/``'s Python files from the page cache; how many."""
    roots = {Path(sysconfig.get_paths()["purelib"]), Path(sysconfig.get_paths()["platlib"])}
    roots.add(REPO / "app")
    count = 0
    for root in roots:
        for path in root.rglob("*"):
            if path.suffix not in PYTHON_FILES or not path.is_file():
                continue
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                count += 1
            finally:
                os.close(fd)
    return count


def first_line_s(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Seconds from spawning ``tourline chat`` to its first stdout line, and that line."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "chat", *args],
        cwd=REPO,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    elapsed = time.perf_counter() - started
    _, err = process.communicate("", timeout=120)  # end of input: the chat ends normally
    if not line:
        raise SystemExit(f"no first line (exit {process.returncode}): {err.strip()}")
    return elapsed, line.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--data-dir", help="TOURLINE_DATA_DIR for the chats")
    parser.add_argument("--caller", default="+14155550100")
    parser.add_argument("--evict", action="store_true", help="start each run page-cache cold")
    parser.add_argument("chat_args", nargs="*", help="more `tourline chat` options, after --")
    options = parser.parse_args()
    env = dict(os.environ)
    if options.data_dir:
        env["TOURLINE_DATA_DIR"] = options.data_dir
    times = []
    for run in range(1, options.runs + 1):
        if options.evict:
            evict_python_files()
        seconds, line = first_line_s(["--caller", options.caller, *options.chat_args], env)
        times.append(seconds)
        print(f"run {run}: {seconds:.3f} s  {line[:60]}")
    print(f"median of {len(times)}: {statistics.median(times):.3f} s")


if __name__ == "__main__":
    main()

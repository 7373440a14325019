"""One attempt (pod) of a local Job: ``python -I -S wrap.py EXIT_FILE -- COMMAND [ARG...]``.

The container's command runs as this process's child, in the session the launcher made for
the attempt (the launcher signals the whole process group, so a SIGTERM reaches the command
itself). When the command ends, its exit status is written to EXIT_FILE (atomically: a file
that exists is whole), and this process exits with the same status. A plane that restarted
while the attempt ran is not its parent and cannot wait for it; the file tells it the outcome.

Statuses are the kubelet's: the exit code, ``128 + N`` for a command killed by signal N, and
128 (``StartError``) for a command that could not start. Standard library only: it runs
isolated (``-I -S``), without the venv's packages.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

START_ERROR = 128


def _outlive(signum: int, frame: object) -> None:
    """The group's signal is for the command; this process stays to record how it ended
    (a handler, not SIG_IGN: the command must not inherit an ignored signal)."""


def run(command: list[str]) -> int:
    try:
        proc = subprocess.Popen(command)
    except OSError as e:
        print(f"StartError: {e}", file=sys.stderr, flush=True)
        return START_ERROR
    code = proc.wait()
    return 128 - code if code < 0 else code


def record(exit_file: str, code: int) -> None:
    tmp = f"{exit_file}.tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(f"{code}\n")
    os.replace(tmp, exit_file)


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print("usage: wrap.py EXIT_FILE -- COMMAND [ARG...]", file=sys.stderr)
        return 2
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _outlive)
    code = run(argv[3:])
    record(argv[1], code)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))

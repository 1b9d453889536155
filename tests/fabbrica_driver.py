"""Many `fabbrica` command lines run one after another in one interpreter, as separate runs would.

    python tests/fabbrica_driver.py RESULTS.json < CASES.json

CASES.json is a list of {"args": [...], "cwd": "..."}. Each case calls `fabbrica.cli.main`, the
function behind the `fabbrica` script and `python -m fabbrica`, with its own sys.argv, working
folder, environment and warnings, with file descriptors 1 and 2 pointing at files of its own;
its exit code is what the interpreter would exit with (SystemExit as Python maps it, 1 and a
traceback for any other exception). RESULTS.json gets, per case, returncode, stdout, stderr and
the non-daemon threads still running after it (a process would wait for them: a hang).

Most of a short `fabbrica` run is Python importing the command; here that happens once, so the
bad-file tests (tests/test_cli_bad_files.py) can try every case and keep a few of them as true
subprocesses. What the first import prints goes to the first case, where a test would see it.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import threading
import traceback
import warnings
from pathlib import Path
from typing import Any

# sys.argv[0] of `python -m fabbrica`
MAIN = str(Path(__file__).resolve().parent.parent / "fabbrica" / "__main__.py")


def _exit_code(exc: SystemExit) -> tuple[int, str]:
    """The exit status and what the interpreter prints for this SystemExit (Python's own rules)."""
    code = exc.code
    if code is None:
        return 0, ""
    if isinstance(code, int):
        return code & 0xFF, ""
    return 1, f"{code}\n"


def run_case(args: list[str], cwd: str) -> dict[str, Any]:
    """One command line, as `python -m fabbrica ARGS` run in `cwd` would see it."""
    environ = dict(os.environ)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    argv, folder = sys.argv, os.getcwd()
    before = set(threading.enumerate())
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        try:
            os.chdir(cwd)
            sys.argv = [MAIN, *args]
            with warnings.catch_warnings():  # each run shows its warnings afresh, as a new process would
                try:
                    from fabbrica.cli import main

                    main()
                    code = 0
                except SystemExit as exc:
                    code, message = _exit_code(exc)
                    sys.stderr.write(message)
                except BaseException:
                    traceback.print_exc()
                    code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            sys.argv = argv
            os.chdir(folder)
            os.environ.clear()
            os.environ.update(environ)
            for handler in root.handlers[:]:
                if handler not in handlers:
                    root.removeHandler(handler)
            root.setLevel(level)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    left = [t.name for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon]
    return {"returncode": code, "stdout": stdout, "stderr": stderr, "threads": left}


def main() -> None:
    cases = json.load(sys.stdin)
    results = [run_case(case["args"], case["cwd"]) for case in cases]
    Path(sys.argv[1]).write_text(json.dumps(results))


if __name__ == "__main__":
    del sys.path[0]  # this folder (tests/): a `fabbrica` run has no such entry
    main()

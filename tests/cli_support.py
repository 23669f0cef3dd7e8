"""Helpers for tests that run the ``edgefer`` command in a subprocess, as a user would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args) -> subprocess.CompletedProcess:
    """Run ``python -m edgefer ARGS...`` from the repo root; capture text output."""
    return subprocess.run([sys.executable, "-m", "edgefer", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, timeout=900)


def assert_one_line_error(proc: subprocess.CompletedProcess, needle: str) -> None:
    """An expected failure: exit 1, exactly one ``edgefer: error:`` line naming ``needle``, no traceback."""
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgefer: error:"), proc.stderr
    assert "Traceback" not in proc.stderr
    assert needle in lines[0], proc.stderr


def assert_usage_error(proc: subprocess.CompletedProcess, needle: str) -> None:
    """A usage error caught by argparse: exit 2, argparse's ``usage:`` lines, then one ``error:`` line naming
    ``needle`` as the last line; no traceback, nothing on stdout."""
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith("usage: edgefer"), proc.stderr
    assert lines[-1].startswith("edgefer") and ": error: " in lines[-1], proc.stderr
    assert sum(": error: " in line for line in lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert needle in lines[-1], proc.stderr

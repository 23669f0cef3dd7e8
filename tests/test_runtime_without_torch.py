"""The runtime path (import edgefer, load .onnx, predict) must work where torch is not installed."""

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

BLOCK_TORCH = textwrap.dedent("""
    import importlib.abc, sys

    class BlockTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ModuleNotFoundError(f"No module named {name!r} (blocked: torch-free runtime test)")
            return None

    sys.meta_path.insert(0, BlockTorch())
""")


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK_TORCH + textwrap.dedent(code)], capture_output=True, text=True,
                          cwd=REPO, timeout=300)


def test_the_blocker_really_blocks_torch():
    proc = _run("import torch")
    assert proc.returncode != 0 and "blocked" in proc.stderr


def test_import_load_and_predict_without_torch(msstnet_export):
    path = msstnet_export[1]
    proc = _run(f"""
        import warnings
        import numpy as np
        import edgefer
        warnings.simplefilter("ignore")
        model = edgefer.load({str(path)!r})
        clip = np.random.default_rng(0).integers(0, 256, (16, 120, 100, 3), dtype=np.uint8)
        result = model.predict(clip)
        assert abs(float(result.probabilities.sum()) - 1) < 1e-5
        assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules), "torch got imported"
        print("OK", result.label)
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("OK ")


def test_cli_info_without_torch(msstnet_export):
    proc = _run(f"""
        from edgefer.cli import main
        raise SystemExit(main(["info", {str(msstnet_export[1])!r}]))
    """)
    assert proc.returncode == 0, proc.stderr
    assert "msstnet" in proc.stdout and "dfew-test" in proc.stdout


def test_video_pipelines_and_the_metadata_reader_without_torch(msstnet_export):
    proc = _run(f"""
        import edgefer.pipeline, edgefer.spotting.video, edgefer.video.track
        from edgefer.runtime.onnx_metadata import read_metadata_props
        props = read_metadata_props({str(msstnet_export[1])!r})
        assert props["edgefer.model"] == "msstnet", props
        assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules), "torch got imported"
        assert "onnx" not in sys.modules, "the metadata reader imported onnx"
        print("OK")
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "OK"


def test_import_edgefer_and_its_kernels_without_opencv():
    # a GPU build box may have torch and triton but no OpenCV: the package, its kernels and benchmarks still
    # import, and OpenCV is needed only once a frame is prepared
    block_cv2 = BLOCK_TORCH.replace('name == "torch" or name.startswith("torch.")', 'name == "cv2"')
    proc = subprocess.run([sys.executable, "-c", block_cv2 + textwrap.dedent("""
        import edgefer, edgefer.runtime, edgefer.pipeline, edgefer.ops, edgefer.metadata
        try:
            import cv2
        except ModuleNotFoundError:
            print("ok")
    """)], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr

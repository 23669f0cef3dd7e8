"""``edgefer.load`` of a ``--custom-ops`` export: the metadata's ``custom_ops`` makes the runtime register
libedgefer_ortops, and the predictions match the standard-op export of the same weights (issue 10).

A small MSSTNet (dim 64) keeps the two exports to seconds; it still holds both custom ops.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from build_support import cpp_ops, ortops_library

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    cpp_ops()
    ortops_library()
    from edgefer.export.onnx_export import export_onnx
    from edgefer.models import build_model
    from edgefer.models.checkpoint import artefact_metadata, weights_sha256

    torch.manual_seed(0)
    model = build_model("msstnet", dim=64, num_heads=4, mlp_hidden=128, kernels="reference").eval()
    folder = tmp_path_factory.mktemp("custom_ops")
    paths = {}
    for custom in (False, True):
        metadata = artefact_metadata(model, trained=False, weights_sha256=weights_sha256(model.state_dict()),
                                     custom_ops=custom)
        paths[custom] = folder / f"msstnet_{'custom' if custom else 'standard'}.onnx"
        export_onnx(model, paths[custom], metadata, custom_ops=custom, random_batches=(1,))
    return paths


def test_load_of_a_custom_ops_export_predicts_as_the_standard_export(exports):
    import edgefer

    proto = onnx.load(str(exports[True]), load_external_data=False)
    assert {n.op_type for n in proto.graph.node if n.domain == "edgefer"} == {"TemporalAttention",
                                                                             "MultiScaleEmbedding"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", edgefer.errors.UntrainedWeightsWarning)
        custom, standard = edgefer.load(exports[True]), edgefer.load(exports[False])
    assert custom.metadata.custom_ops == ("edgefer",) and standard.metadata.custom_ops == ()
    clips = np.random.default_rng(0).integers(0, 256, (3, 16, 120, 100, 3), dtype=np.uint8)
    got, want = custom.predict(clips), standard.predict(clips)
    assert len(got) == len(want) == 3
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.logits, w.logits, atol=1e-4, rtol=0)
        np.testing.assert_allclose(g.probabilities, w.probabilities, atol=1e-5, rtol=0)
        assert g.label == w.label


def test_info_reads_a_custom_ops_export_without_its_op_library(exports, tmp_path):
    # `edgefer info` reads the metadata from the file itself: no session, so no custom-op library is needed
    import os
    import subprocess
    import sys

    env = dict(os.environ, EDGEFER_ORTOPS_LIBRARY=str(tmp_path / "missing.so"))
    args = [sys.executable, "-m", "edgefer"]
    info = subprocess.run([*args, "info", str(exports[True]), "--json"], capture_output=True, text=True, env=env,
                          timeout=300)
    assert info.returncode == 0, info.stderr
    assert '"custom_ops": "[\\"edgefer\\"]"' in info.stdout
    # while loading it for inference does need the library, and says so in one line
    code = f"import edgefer; edgefer.load({str(exports[True])!r})"
    load = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert load.returncode != 0 and "EDGEFER_ORTOPS_LIBRARY" in load.stderr

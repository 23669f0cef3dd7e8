"""FESNet: shapes, LSDM's discrepancy, the cascade, its loss, gradients, config switches, and ONNX parity."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from edgefer.labels import SPOTTING_CLASSES
from edgefer.metadata import ModelMetadata
from edgefer.models import build_model
from edgefer.models.fesnet import Config

K = 8  # frames per interval in these tests (64 by default)


def small(**overrides):
    torch.manual_seed(0)
    return build_model("fesnet", **{"clip_length": K, **overrides})


def test_default_config_and_metadata():
    model = build_model("fesnet")
    c = model.config
    assert (c.clip_length, c.encoder_channels, c.token_grid, c.temporal_kernels, c.refine_stages) == \
        (64, (32, 64, 128), 8, (3, 5, 7, 9), 3)
    assert (c.smooth_weight, c.smooth_tau, c.num_stages) == (0.15, 4.0, 5)
    with torch.no_grad():
        tokens = model.encoder.eval()(torch.rand(2, 3, 112, 112))
    assert tokens.shape == (2, 64, 128)  # 8 x 8 tokens of dim 128
    meta = ModelMetadata(**model.metadata_fields())
    assert (meta.model, meta.task, meta.labels, meta.clip_length, meta.frame_size) == \
        ("fesnet", "spotting", SPOTTING_CLASSES, 64, (112, 112))
    assert (meta.sampling, meta.input_layout, meta.output) == ("consecutive", "BTCHW", "logits")
    assert sum(p.numel() for p in model.parameters()) < 2_000_000  # a light per-frame encoder


def test_output_shapes_and_final_stage():
    model = small().eval()
    frames = torch.rand(2, K, 3, 112, 112)
    with torch.no_grad():
        stages = model.forward_stages(frames)
        final = model(frames)
    assert stages.shape == (2, 5, K, 3) and final.shape == (2, K, 3)
    assert torch.equal(final, stages[:, -1])


def test_discrepancy_is_relative_to_the_first_frame():
    model = small().eval()
    frames = torch.rand(1, K, 3, 112, 112)
    with torch.no_grad():
        delta = model.discrepancy(frames)
        assert delta.shape == (1, K, 64, 128)
        assert delta[:, 0].abs().max() == 0
        # The same frames with a different first frame: every later frame's discrepancy changes.
        other = frames.clone()
        other[:, 0] = torch.rand(3, 112, 112)
        changed = (model.discrepancy(other) - delta)[0, 1:].abs().amax(dim=(1, 2))
    assert changed.min() > 0


def test_temporal_aggregation_spreads_across_frames():
    model = small(dropout=0.0).eval()
    frames = torch.rand(1, K, 3, 112, 112)
    other = frames.clone()
    other[:, 5] = torch.rand(3, 112, 112)
    with torch.no_grad():
        diff = (model(other) - model(frames))[0].abs().amax(-1)
    assert diff[1] > 0 and diff[7] > 0  # frames 1 and 7 see the change at frame 5


def test_config_fields_change_the_model():
    assert small(refine_stages=1).forward_stages(torch.rand(1, K, 3, 112, 112)).shape == (1, 3, K, 3)
    assert len(small(temporal_kernels=(3, 5)).temporal.branches) == 2
    seven = small(token_grid=7)  # 112 = 16 * 7: no padding, 7 x 7 tokens
    assert seven.encoder.pad == 0 and seven.spatial.pos.shape == (49, 128)
    assert small(encoder_channels=(16, 32, 64), spatial_heads=2).spatial.qkv.in_features == 64
    assert len(small(blocks_per_stage=2).encoder.stages) == 6
    assert len(small(refine_layers=3).refine[0].dilated) == 3
    for bad in (dict(token_grid=6), dict(temporal_kernels=(4,)), dict(class_weights=(1.0, 2.0)),
                dict(spatial_heads=3)):
        with pytest.raises(ValueError):
            Config(**bad)
    with pytest.raises(ValueError, match="clip must be"):
        small()(torch.rand(1, K + 1, 3, 112, 112))


def test_loss_and_gradients_flow():
    model = small(dropout=0.0).train()
    frames = torch.rand(2, K, 3, 112, 112)
    targets = torch.zeros(2, K, dtype=torch.long)
    targets[0, 2:5] = 2
    targets[1, 1:7] = 1
    stages = model.forward_stages(frames)
    loss = model.loss(stages, targets)
    assert loss.item() == pytest.approx(model.criterion(stages, targets).item())
    without = small(dropout=0.0, supervise_proposals=False)
    assert without.loss(stages, targets).item() == pytest.approx(model.criterion(stages[:, 1:], targets).item())
    loss.backward()
    for param in (model.encoder.stem[0].weight, model.spatial.qkv.weight, model.proposal[0].weight,
                  model.temporal.branches[3].weight, model.refine[-1].out.weight):
        assert param.grad is not None and param.grad.abs().sum() > 0


def test_onnx_export_matches_pytorch(tmp_path):
    model = small().eval()
    path = tmp_path / "fesnet.onnx"
    torch.onnx.export(model, (torch.rand(1, K, 3, 112, 112),), str(path), dynamo=False, opset_version=17,
                      input_names=["clip"], output_names=["output"],
                      dynamic_axes={"clip": {0: "batch"}, "output": {0: "batch"}})
    graph = onnx.load(str(path))
    onnx.checker.check_model(graph, full_check=True)
    assert {node.domain for node in graph.graph.node} <= {"", "ai.onnx"}
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    diffs = []
    for batch in (2, 1):
        frames = torch.rand(batch, K, 3, 112, 112, generator=torch.Generator().manual_seed(batch))
        with torch.no_grad():
            expected = model(frames).numpy()
        got = session.run(None, {"clip": frames.numpy()})[0]
        assert got.shape == (batch, K, 3)
        diffs.append(float(np.abs(got - expected).max()))
    print("FESNet ONNX Runtime vs PyTorch max abs diff:", diffs)
    assert max(diffs) <= 1e-4

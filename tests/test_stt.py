"""STT: shapes, the config's switches, its loss, gradients, the shared temporal op, and ONNX parity."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F

import edgefer.ops
from edgefer.labels import DFER_LABELS
from edgefer.metadata import ModelMetadata
from edgefer.models import build_model
from edgefer.models.losses import CosineLinear
from edgefer.models.stt import Config, Model

SMALL = dict(dim=64, num_heads=4, depth=1, clip_length=4)  # 4 frames keep the tests fast


def small(**overrides):
    torch.manual_seed(0)
    return build_model("stt", kernels="reference", **{**SMALL, **overrides})


def test_default_config_is_the_design_note():
    model = build_model("stt")
    c = model.config
    assert (c.clip_length, c.frame_size, c.dim, c.depth, c.num_heads, c.mlp_ratio) == (16, 112, 512, 4, 8, 4.0)
    assert c.tokens_per_frame == 49 + 1  # 7 x 7 C4 tokens and the CLS token
    assert model.pos_s.shape == (50, 512) and model.pos_t.shape == (16, 512)
    assert isinstance(model.head, CosineLinear) and model.kernels == "auto"
    assert (c.cs_scale, c.cs_margin, c.cs_center_weight) == (16.0, 0.2, 0.01)
    fields = model.metadata_fields()
    meta = ModelMetadata(**fields)
    assert (meta.model, meta.task, meta.labels, meta.clip_length, meta.frame_size) == ("stt", "dfer", DFER_LABELS,
                                                                                        16, (112, 112))
    assert (meta.sampling, meta.input_layout, meta.output, meta.mean, meta.std) == ("dfew-test", "BTCHW", "logits",
                                                                                    (0.0,), (1.0,))


def test_logits_and_features_shapes():
    model = small().eval()
    clip = torch.rand(2, 4, 3, 112, 112)
    with torch.no_grad():
        features = model.forward_features(clip)
        logits = model(clip)
    assert features.shape == (2, 64) and logits.shape == (2, 7)
    assert torch.allclose(logits, model.head(features))
    assert logits.abs().max() <= 16.0 + 1e-4  # cosine head: s * cos(theta)


def test_temporal_attention_goes_through_the_shared_op(monkeypatch):
    seen = []
    real = edgefer.ops.temporal_attention

    def recording(qkv, num_heads, scale=None, *, kernels="auto"):
        seen.append((tuple(qkv.shape), num_heads, kernels))
        return real(qkv, num_heads, scale, kernels=kernels)

    monkeypatch.setattr(edgefer.ops, "temporal_attention", recording)
    model = small(depth=2).eval()
    with torch.no_grad():
        model(torch.rand(1, 4, 3, 112, 112))
    assert seen == [((1, 4, 50, 192), 4, "reference")] * 2


def test_attention_structure_spatial_within_frame_temporal_across():
    """A change at (frame 3, token 5) reaches every token of frame 3 (spatial) and token 5 elsewhere (temporal)."""
    torch.manual_seed(0)
    block = small(dropout=0.0).blocks[0].eval()
    x = torch.randn(1, 4, 50, 64)
    y = x.clone()
    y[0, 3, 5] += 1.0
    with torch.no_grad():
        spatial_only = block.proj_s(edgefer.models.stt.spatial_attention(block.qkv_s(block.norm_s(y)), 4, 16)) - \
            block.proj_s(edgefer.models.stt.spatial_attention(block.qkv_s(block.norm_s(x)), 4, 16))
        changed = (block(y, "reference") - block(x, "reference")).abs().amax(-1)[0]  # (T, N)
    moved = spatial_only.abs().amax(-1)[0]
    assert moved[3].min() > 0 and torch.cat([moved[:3], moved[4:]]).max() == 0
    assert changed[:, 5].min() > 0 and changed[3].min() > 0


def test_config_fields_change_the_model():
    assert small(pooling="mean").cls_token is None and small().cls_token is not None
    assert small(pooling="mean").pos_s.shape == (49, 64)
    ce = small(loss="ce")
    assert isinstance(ce.head, torch.nn.Linear) and isinstance(ce.criterion, torch.nn.CrossEntropyLoss)
    assert len(small(depth=3).blocks) == 3
    no_pos = small(spatial_embedding=False, temporal_embedding=False)
    assert not no_pos.pos_s.requires_grad and no_pos.pos_s.abs().sum() == 0 and no_pos.pos_t.abs().sum() == 0
    assert small(mlp_ratio=2.0).blocks[0].mlp[0].out_features == 128
    with pytest.raises(ValueError, match="loss"):
        Config(loss="focal")
    with pytest.raises(ValueError, match="divisible"):
        Config(dim=100, num_heads=8)
    with pytest.raises(ValueError, match="no field"):
        build_model("stt", width=3)


@pytest.mark.parametrize("loss", ["compact", "ce"])
def test_loss_values_and_gradients_flow(loss):
    model = small(loss=loss, dropout=0.0).train()
    clip, targets = torch.rand(2, 4, 3, 112, 112), torch.tensor([0, 4])
    features = model.forward_features(clip)
    value = model.loss(features, targets)
    if loss == "ce":
        expected = F.cross_entropy(model.head(features), targets)
    else:
        f_hat = F.normalize(features, dim=1)
        cos = f_hat @ F.normalize(model.head.weight, dim=1).t()
        logits = 16.0 * (cos - 0.2 * F.one_hot(targets, 7))
        centres = F.normalize(model.criterion.centres, dim=1)[targets]
        expected = F.cross_entropy(logits, targets) + 0.01 * (f_hat - centres).pow(2).sum(1).mean()
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    value.backward()
    for param in (model.backbone.conv1.weight, model.proj.weight, model.pos_t, model.blocks[0].qkv_t.weight,
                  model.head.weight):
        assert param.grad is not None and param.grad.abs().sum() > 0
    if loss == "compact":
        assert model.criterion.centres.grad.abs().sum() > 0
        assert model.cls_token.grad.abs().sum() > 0


def test_wrong_clip_shape_raises():
    with pytest.raises(ValueError, match="clip must be"):
        small()(torch.rand(1, 8, 3, 112, 112))


def _export_and_compare(model, example, batches, path):
    torch.onnx.export(model, (example,), str(path), dynamo=False, opset_version=17, input_names=["clip"],
                      output_names=["output"], dynamic_axes={"clip": {0: "batch"}, "output": {0: "batch"}})
    graph = onnx.load(str(path))
    onnx.checker.check_model(graph, full_check=True)
    assert {node.domain for node in graph.graph.node} <= {"", "ai.onnx"}  # standard ops only
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    diffs = []
    for batch in batches:
        clip = torch.rand(batch, *example.shape[1:], generator=torch.Generator().manual_seed(batch))
        with torch.no_grad():
            expected = model(clip).numpy()
        got = session.run(None, {"clip": clip.numpy()})[0]
        assert got.shape == expected.shape
        diffs.append(float(np.abs(got - expected).max()))
    return diffs


def test_onnx_export_matches_pytorch(tmp_path):
    model = small(depth=2, clip_length=8).eval()
    diffs = _export_and_compare(model, torch.rand(1, 8, 3, 112, 112), (2, 1), tmp_path / "stt.onnx")
    print("STT ONNX Runtime vs PyTorch max abs diff:", diffs)
    assert max(diffs) <= 1e-4

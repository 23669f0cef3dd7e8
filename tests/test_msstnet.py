import pytest
import torch

from edgefer.models import build_model
from edgefer.models.msstnet import Config, map_size
from edgefer.models.resnet import ResNet18

SMALL = dict(dim=64, num_heads=4, mlp_hidden=128)


def test_stage_shapes_on_112():
    maps = ResNet18().eval()(torch.rand(2, 3, 112, 112))
    assert [tuple(m.shape[1:]) for m in maps] == [(64, 28, 28), (128, 14, 14), (256, 7, 7), (512, 4, 4)]
    assert [map_size(112, s) for s in ("C2", "C3", "C4", "C5")] == [28, 14, 7, 4]


def test_resnet_state_dict_keys_match_torchvision_layout():
    keys = set(ResNet18().state_dict())
    assert len(keys) == 122  # torchvision.models.resnet18().state_dict() has 122 entries
    for key in ("conv1.weight", "bn1.running_var", "layer1.0.conv1.weight", "layer2.0.downsample.0.weight",
                "layer2.0.downsample.1.num_batches_tracked", "layer4.1.bn2.bias", "fc.weight", "fc.bias"):
        assert key in keys


def test_logits_shape_and_every_scale_gives_16_tokens():
    model = build_model("msstnet", **SMALL).eval()
    tokens = []
    for emb in model.embeddings:
        emb.register_forward_hook(lambda m, i, o: tokens.append(tuple(o.shape)))
    with torch.no_grad():
        out = model(torch.rand(2, 16, 3, 112, 112))
    assert out.shape == (2, 7)
    assert tokens == [(2, 16, 16, 64)] * 3


def test_scales_config_changes_the_model():
    three = build_model("msstnet", **SMALL)
    four = build_model("msstnet", scales=("C2", "C3", "C4", "C5"), **SMALL)
    assert len(four.blocks) == 4 and len(three.blocks) == 3
    assert four.embeddings[0].proj.kernel_size == (7, 7)  # 28x28 map, G = 4 -> P = 7


@pytest.mark.parametrize("bad", [dict(scales=("C5", "C3")), dict(scales=("C6",)), dict(dim=100, num_heads=8),
                                 dict(grid=8, scales=("C5",))])
def test_bad_config_raises(bad):
    with pytest.raises(ValueError):
        Config(**bad)


def test_unknown_model_and_field_raise():
    with pytest.raises(ValueError, match="unknown model"):
        build_model("resnet50")
    with pytest.raises(ValueError, match="no field"):
        build_model("msstnet", depth=12)


def test_wrong_clip_shape_raises():
    model = build_model("msstnet", **SMALL).eval()
    with pytest.raises(ValueError, match="clip must be"):
        model(torch.rand(1, 8, 3, 112, 112))


def test_attention_is_along_time_only():
    """Changing frame t of one spatial token must not change other tokens' outputs in the first block."""
    torch.manual_seed(0)
    model = build_model("msstnet", dropout=0.0, **SMALL).eval()
    block = model.blocks[0]
    x = torch.randn(1, 16, 16, 64)
    y = x.clone()
    y[0, 3, 5] += 1.0  # token n = 5 at frame 3
    with torch.no_grad():
        a, b = block(x, "reference"), block(y, "reference")
    changed = (a - b).abs().amax(dim=-1)[0]  # (T, N)
    assert changed[:, 5].min() > 0  # every frame of token 5 sees the change
    others = torch.cat([changed[:, :5], changed[:, 6:]], dim=1)
    assert others.max() == 0

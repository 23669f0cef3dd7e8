"""A short MSSTNet training run gives the same loss curve with kernels="triton" and kernels="reference".

Tiny config (4 frames of 32 x 32, two scales on a 2 x 2 grid, D = 32, 2 heads of 16, no dropout) so that it
runs in Triton's interpreter on the CPU (the module-scoped ``device`` fixture sets ``TRITON_INTERPRET=1`` for
this module only, see tests/test_triton_attention.py); compiled on a GPU where torch sees one.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("triton")
from edgefer.models import build_model  # noqa: E402
from edgefer.ops import triton as tk  # noqa: E402
from triton_device import device  # noqa: E402,F401  (shared fixture)

TINY = dict(clip_length=4, frame_size=32, scales=("C3", "C4"), grid=2, dim=32, num_heads=2, mlp_hidden=32,
            dropout=0.0)
STEPS = 3


def loss_curve(kernels: str, device: torch.device) -> list[float]:
    """Losses of STEPS SGD steps on one fixed batch of 2 clips, from a fixed initialisation."""
    torch.manual_seed(0)
    model = build_model("msstnet", kernels=kernels, **TINY).to(device)
    g = torch.Generator().manual_seed(1)
    clip = torch.rand(2, 4, 3, 32, 32, generator=g).to(device)
    labels = torch.tensor([1, 5], device=device)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    losses = []
    for _ in range(STEPS):
        loss = F.cross_entropy(model(clip), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.fixture
def no_tf32():
    """TF32 off for the test, torch's flags restored after it (saved and set back, never monkeypatched: they are
    properties of torch's backend modules, which monkeypatch cannot delete on teardown)."""
    saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def test_training_loss_curve_matches_reference(device, monkeypatch, no_tf32):
    # the backbone is the same in both runs, but the reference embedding is a cuDNN conv: no TF32 there
    calls = {"temporal_attention": 0, "multiscale_embedding": 0}
    for name in calls:  # count the triton ops' calls, so the run provably went through them
        real = getattr(tk, name)

        def counted(*args, _real=real, _name=name, **kwargs):
            calls[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(tk, name, counted)
    triton_losses = loss_curve("triton", device)
    assert calls == {"temporal_attention": 2 * STEPS, "multiscale_embedding": 2 * STEPS}
    reference_losses = loss_curve("reference", device)
    assert triton_losses[-1] < triton_losses[0]  # it trains
    assert triton_losses == pytest.approx(reference_losses, rel=1e-4, abs=1e-5)

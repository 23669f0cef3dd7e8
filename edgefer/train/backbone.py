"""``--backbone-weights``: a torchvision-layout ResNet-18 state dict loaded into a model's per-frame backbone.

edgefer's :class:`edgefer.models.resnet.ResNet18` uses torchvision's ``resnet18`` keys (``conv1.weight``,
``bn1.*``, ``layer1.0.conv1.weight`` ... ``fc.*``), so ImageNet or MS-Celeb-1M weights a user holds load as they
are. The file is read with ``torch.load(weights_only=True)`` (never unpickling code). ``fc`` is not used by the
models; it is skipped when its shape differs (a face-recognition head of another class count). A ``module.``
prefix (a DDP-saved file) and a ``{"state_dict": ...}`` wrapper are accepted.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import ArgumentError, ModelFileError


def load_backbone_weights(model: torch.nn.Module, path: str | Path) -> int:
    """Load ``path`` into ``model.backbone`` (MSSTNet, STT); returns the number of tensors loaded.

    Raises:
        ArgumentError: the model has no ResNet-18 backbone (FESNet's encoder is its own).
        ModelFileError: the file is missing, unreadable, not a state dict of tensors, lacks backbone keys, or a
            tensor's shape differs from the backbone's (one line naming the key).
    """
    from ..models.checkpoint import _safe_load
    from ..models.resnet import ResNet18

    backbone = getattr(model, "backbone", None)
    if not isinstance(backbone, ResNet18):
        raise ArgumentError(f"--backbone-weights: {getattr(model, 'name', type(model).__name__)} has no ResNet-18 "
                            "backbone (only msstnet and stt have one)")
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"--backbone-weights {path}: no such file")
    payload = _safe_load(path)
    if isinstance(payload, dict) and isinstance(payload.get("state_dict"), dict):
        payload = payload["state_dict"]
    if not isinstance(payload, dict) or not payload or not all(isinstance(v, torch.Tensor) for v in payload.values()):
        raise ModelFileError(f"--backbone-weights {path}: not a state dict of tensors")
    state = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in payload.items()}
    own = backbone.state_dict()
    missing = [k for k in own if k not in state and not k.startswith("fc.")]
    if missing:
        raise ModelFileError(f"--backbone-weights {path}: not a torchvision-layout ResNet-18 ({len(missing)} backbone "
                             f"keys missing, first {missing[0]!r})")
    loaded = {}
    for key, tensor in own.items():
        if key not in state:
            continue
        if tuple(state[key].shape) != tuple(tensor.shape):
            if key.startswith("fc."):
                continue
            raise ModelFileError(f"--backbone-weights {path}: {key} has shape {tuple(state[key].shape)}, the "
                                 f"backbone's is {tuple(tensor.shape)}")
        loaded[key] = state[key].to(tensor.dtype)
    backbone.load_state_dict(loaded, strict=False)
    return len(loaded)

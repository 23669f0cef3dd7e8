"""PyTorch backend for ``.pt`` checkpoints: development and parity checks (imports torch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import BackendUnavailableError
from .base import LoadedModel


class TorchModel(LoadedModel):
    """An edgefer checkpoint (or a bare state dict, given ``model_name``) run eagerly in PyTorch.

    Args:
        path: the ``.pt`` file.
        device: a torch device string (``"cpu"``, ``"cuda"``).
        model_name: required for a bare state dict.
        kernels: op implementation (see :mod:`edgefer.ops`).

    Raises:
        BackendUnavailableError: torch is not installed.
        ModelFileError: see :func:`edgefer.models.checkpoint.load_checkpoint`.
    """

    backend = "pytorch"

    def __init__(self, path: str | Path, *, device: str = "cpu", model_name: str | None = None,
                 kernels: str = "auto") -> None:
        try:
            import torch
        except ImportError:
            raise BackendUnavailableError("loading a .pt checkpoint needs PyTorch: `pip install edgefer[torch]`") from None
        from ..models.checkpoint import artefact_metadata, load_checkpoint

        self._torch = torch
        loaded = load_checkpoint(path, model_name, kernels=kernels)
        self.device = torch.device(device)
        self.model = loaded.model.to(self.device)
        super().__init__(artefact_metadata(self.model, trained=loaded.trained, weights_sha256=loaded.weights_sha256),
                         str(path))

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        with self._torch.no_grad():
            out = self.model(self._torch.from_numpy(batch).to(self.device))
        return out.float().cpu().numpy()

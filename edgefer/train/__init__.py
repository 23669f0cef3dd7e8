"""Training MSSTNet, STT and FESNet: ``edgefer train`` and ``edgefer evaluate``'s library (imports torch).

- :mod:`.config`: the YAML recipe (``configs/*.yaml``), flag overrides, the resolved :class:`TrainConfig`.
- :mod:`.trainer`: :func:`train`, one code for 1 process, N CPU processes (gloo) and N GPUs (nccl) under
  ``torchrun`` (:mod:`.distributed`), AMP on CUDA, resumable ``last.pt`` / ``best.pt`` checkpoints that ``edgefer
  export --weights`` reads, ``metrics.csv`` (+ TensorBoard when installed).
- :mod:`.selection`: the seeded, class-stratified selection split carved from the training fold.
- :mod:`.metrics` (WAR/UAR over the fixed 7-class set), :mod:`.evaluation`, :mod:`.spotting` (MEGC F1 with
  :mod:`edgefer.spotting`), :mod:`.artefact` (an exported ``.onnx`` scored through the runtime),
  :mod:`.folds` (``--folds 1-5``); the confusion matrix PNG is drawn by :func:`edgefer.plots.plot_confusion`.

The datasets are :mod:`edgefer.data`'s. The runtime never imports this package. Its names are imported on first
use, so that ``edgefer evaluate`` on an ``.onnx`` file (:mod:`.artefact`) runs without torch.
"""

from edgefer.lazy import lazy_getattr

_LAZY = {"TrainConfig": ".config", "apply_overrides": ".config", "load_config": ".config", "resolve": ".config",
         "TrainResult": ".trainer", "train": ".trainer"}

__all__ = list(_LAZY)


__getattr__ = lazy_getattr(__name__, _LAZY)

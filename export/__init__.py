"""The export module: PyTorch training-time models -> deployable artefacts (ONNX; TensorRT engines later).

Import :func:`export.onnx_export.export_onnx` for the library API, or use ``edgefer export`` on the command line.
This package imports torch and onnx: it is the ``export`` extra, never needed by the runtime.
"""

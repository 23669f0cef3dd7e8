"""`edgefer.stream` (issue 13): the cached stream gives the whole-clip model's logits on real video; lost faces,
smoothing, sources and backpressure."""

import numpy as np
import pytest

import edgefer
from edgefer.errors import ArgumentError, VideoError
from edgefer.stream import Smoother


@pytest.mark.slow
def test_cached_stream_equals_the_whole_clip_model_on_real_video(split_msstnet, sample_video):
    from edgefer.video import read_face_track

    _, whole_path, folder, _ = split_msstnet
    video = sample_video("single_face.mp4")
    split, whole = edgefer.load(folder), edgefer.load(whole_path)
    results = list(edgefer.stream(split, video, stride=4, max_frames=40))
    assert results and all(r.tracked and r.cached for r in results)
    track = read_face_track(video, crop_size=112, max_frames=40)
    worst = 0.0
    for r in results:
        assert r.end_frame - r.start_frame + 1 == 16
        expected = whole.predict(np.stack(track.crops[r.start_frame:r.end_frame + 1]))
        worst = max(worst, float(np.max(np.abs(r.logits - expected.logits))))
        assert r.label == expected.label
    assert worst <= 1e-4
    assert [r.start_frame for r in results] == list(range(0, 40 - 15, 4))
    # the uncached path (the whole graph rerun per window) gives the same windows and labels
    uncached = list(edgefer.stream(whole, video, stride=4, max_frames=40))
    assert [(r.start_frame, r.label) for r in uncached] == [(r.start_frame, r.label) for r in results]
    assert not any(r.cached for r in uncached)


@pytest.mark.slow
def test_lost_face_is_reported_and_never_predicted(sample_video):
    video = sample_video("face_noface.mov")  # a face, then none
    results = list(edgefer.stream("zoo:fer-minixception", video, stride=8, detect_every=2))
    faces = [r for r in results if r.tracked]
    lost = [r for r in results if not r.tracked]
    assert faces and lost
    assert all(r.label is None and r.probabilities is None and r.box is None for r in lost)
    assert all(r.box is not None and abs(float(r.probabilities.sum()) - 1) < 1e-4 for r in faces)
    first_lost = lost[0].start_frame
    assert all(r.end_frame < first_lost for r in faces)  # no window reaches into the face-less frames


def test_frame_iterator_source_without_a_face_reports_lost_frames():
    frames = (np.zeros((120, 160, 3), np.uint8) for _ in range(10))
    results = list(edgefer.stream("zoo:fer-minixception", frames, stride=4, detector="haar", fps=10))
    assert [r.start_frame for r in results] == [0, 4, 8]
    assert all(r.face == "lost" for r in results) and results[1].start_s == pytest.approx(0.4)


def test_bad_sources_and_arguments_are_one_clear_error(tmp_path):
    with pytest.raises(VideoError, match="video file not found"):
        next(iter(edgefer.stream("zoo:fer-minixception", tmp_path / "missing.mp4")))
    with pytest.raises(VideoError, match="frame 0 of the frame iterator is not a BGR uint8"):
        list(edgefer.stream("zoo:fer-minixception", iter([np.zeros((4, 4), np.float32)]), detector="haar"))
    with pytest.raises(ArgumentError, match="smoothing must be one of"):
        edgefer.stream("zoo:fer-minixception", [], smoothing="median")
    with pytest.raises(ArgumentError, match="on_slow must be one of"):
        edgefer.stream("zoo:fer-minixception", [], on_slow="wait")
    with pytest.raises(ArgumentError, match="stride 17 is larger than the window|stride"):
        edgefer.stream("zoo:fer-minixception", [], stride=17)


def test_drop_policy_counts_what_a_slow_consumer_misses():
    import time

    from edgefer.stream import FrameFeed

    feed = FrameFeed((np.full((2, 2, 3), i, np.uint8) for i in range(200)), policy="drop", buffer=2)
    seen = []
    for index, _ in feed:
        seen.append(index)
        time.sleep(0.002)
    assert feed.dropped > 0 and len(seen) + feed.dropped == 200 and seen == sorted(seen)
    block = FrameFeed((np.zeros((2, 2, 3), np.uint8) for _ in range(50)), policy="block")
    assert [i for i, _ in block] == list(range(50)) and block.dropped == 0


def test_smoothing_ema_and_vote():
    a, b = np.array([0.9, 0.1], np.float32), np.array([0.2, 0.8], np.float32)
    ema = Smoother("ema", alpha=0.5)
    ema(a)
    probs, top = ema(b)
    assert np.allclose(probs, [0.55, 0.45]) and top == 0
    vote = Smoother("vote", windows=3)
    assert [vote(p)[1] for p in (a, b, b, a)] == [0, 1, 1, 1]
    vote.reset()
    assert vote(a)[1] == 0


@pytest.mark.slow
def test_the_cached_stream_runs_without_torch(split_msstnet, sample_video):
    from test_runtime_without_torch import _run

    folder, video = split_msstnet[2], sample_video("single_face.mp4")
    proc = _run(f"""
        import sys, warnings
        import edgefer
        warnings.simplefilter("ignore")
        results = list(edgefer.stream({str(folder)!r}, {str(video)!r}, stride=8, max_frames=24))
        assert results and all(r.cached and r.tracked for r in results)
        assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules), "torch got imported"
        print("OK", len(results))
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("OK 2")


@pytest.mark.slow
def test_a_spotting_model_streams_without_the_cache(sample_video, tmp_path):
    torch = pytest.importorskip("torch")
    from edgefer.export.onnx_export import export_onnx
    from edgefer.models import build_model
    from edgefer.models.checkpoint import artefact_metadata, weights_sha256

    torch.manual_seed(0)
    model = build_model("fesnet", kernels="reference").eval()
    metadata = artefact_metadata(model, trained=False, weights_sha256=weights_sha256(model.state_dict()))
    path = export_onnx(model, tmp_path / "fesnet.onnx", metadata).path
    results = list(edgefer.stream(path, sample_video("single_face.mp4"), stride=4, detect_every=4))
    assert [r.start_frame for r in results] == [0, 4, 8]  # K = 64 of 72 frames
    for r in results:
        assert r.frame_probabilities.shape == (64, 3) and not r.cached
        assert np.allclose(r.probabilities, r.frame_probabilities.mean(axis=0), atol=1e-6)
    # the detector ran on frames 0, 4, 8, ...: the windows' last frames (63, 67, 71) carry the tracker's box
    assert not any(r.detected for r in results)

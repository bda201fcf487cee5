"""Which Worker Deployment Version this code is: the deployment's name and a build id.

The build id is `WORKER_BUILD_ID` when set (a CI pipeline's tag), else the package's version and
a digest of the code the worker runs, so two checkouts with the same code are the same version
and any change to it, however small, is a new one (README: deploying a new build)."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from release.packages import WORKER_CODE
from settings import Settings

ROOT = Path(__file__).resolve().parents[1]
CODE = WORKER_CODE  # what a worker runs: a change in any of these is a new build


@lru_cache(maxsize=4)
def code_digest(root: Path = ROOT) -> str:
    """Read once per process: a file edited under a running process does not make it another
    build."""
    digest = hashlib.sha256()
    for package in CODE:
        for path in sorted((root / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            digest.update(str(path.relative_to(root)).encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()[:12]


def package_version() -> str:
    try:
        return metadata.version("paysaga")
    except metadata.PackageNotFoundError:
        return "0"


def build_id(settings: Settings) -> str:
    return settings.worker_build_id or f"{package_version()}-{code_digest()}"

"""Model versions of a deployment on disk, and which one is current.

Layout of ``Settings.models_root``::

    models/
      m-20261127-1a2b3c4d5e/     a trained model (meta.json, en/, zh/)
      m-20261128-9f8e7d6c5b/
      registry.json              {"promoted": "m-...", "history": ["m-...", "m-..."]}

``history`` lists promotions in order; ``rollback`` goes back to the previous one. Old versions are
never deleted. The current model (``resolve_model_dir``) is ``Settings.model_dir`` if set, else the
promoted version, else the bundled model ``classifiers/model``.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from classifiers.runtime import META_FILE, read_meta
from pipeline.config import BUNDLED_MODEL_DIR, Settings
from pipeline.core.errors import ConfigError, ModelError

REGISTRY_FILE = "registry.json"


@dataclass(frozen=True)
class ModelVersion:
    """One trained model under the models root."""

    version: str
    path: Path
    created_at: str
    promoted: bool
    metrics: dict[str, Any]


def _read_registry(root: Path) -> dict[str, Any]:
    path = root / REGISTRY_FILE
    if not path.is_file():
        return {"promoted": None, "history": []}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot read the model registry {path}: {e}") from e
    return {"promoted": data.get("promoted"), "history": list(data.get("history", []))}


def _write_registry(root: Path, data: dict[str, Any]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".registry-", dir=root)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, root / REGISTRY_FILE)


def promoted_version(root: Path) -> str | None:
    """The promoted version under ``root``, or None."""
    return _read_registry(root)["promoted"]


def list_versions(root: Path) -> list[ModelVersion]:
    """Every trained model under ``root``, oldest first."""
    if not root.is_dir():
        return []
    current = promoted_version(root)
    out = []
    for d in sorted(p for p in root.iterdir() if (p / META_FILE).is_file() and not p.name.startswith(".")):
        try:
            meta = read_meta(d)
        except ModelError:
            continue
        out.append(ModelVersion(str(meta["version"]), d, str(meta.get("created_at", "")),
                                meta["version"] == current, dict(meta.get("metrics", {}))))
    return sorted(out, key=lambda v: (v.created_at, v.version))


def version_dir(root: Path, version: str) -> Path:
    """The directory of ``version`` under ``root`` (which need not exist yet)."""
    if not version or "/" in version or version.startswith("."):
        raise ConfigError(f"invalid model version {version!r}")
    return root / version


def promote(root: Path, version: str) -> None:
    """Make ``version`` the current model of the deployment.

    Raises:
        ModelError: there is no trained model with that version under ``root``.
    """
    read_meta(version_dir(root, version))
    reg = _read_registry(root)
    if reg["promoted"] != version:
        reg["history"].append(version)
    reg["promoted"] = version
    _write_registry(root, reg)


def rollback(root: Path) -> str | None:
    """Go back to the version promoted before the current one; returns it.

    Rolling back the first promotion returns None: no version is promoted any more, so the
    deployment is back on ``Settings.model_dir`` or the bundled model.

    Raises:
        ModelError: nothing has been promoted.
    """
    reg = _read_registry(root)
    history = reg["history"]
    if not history or reg["promoted"] is None:
        raise ModelError(f"no promoted model version under {root} to roll back from")
    history.pop()
    reg["promoted"] = history[-1] if history else None
    _write_registry(root, reg)
    return reg["promoted"]


def resolve_model_dir(settings: Settings) -> Path:
    """The current model: ``settings.model_dir``, else the promoted version, else the bundled model."""
    if settings.model_dir is not None:
        return Path(settings.model_dir)
    current = promoted_version(settings.models_root)
    if current:
        return version_dir(settings.models_root, current)
    return BUNDLED_MODEL_DIR

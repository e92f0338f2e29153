"""Model versions on disk: where each trained model lives under a models root, and installing one there.

Layout of a deployment's models root (``Settings.models_root``)::

    models/
      m-20261127-1a2b3c4d5e/     a trained model (meta.json, en/, zh/)
      m-20261128-9f8e7d6c5b/
      .training/                 where a model is trained before it is installed

Which versions exist and which one is current is recorded in the database (the ``model_versions``
table, ``storage.registry``), not here: this module only knows paths. Old versions are never deleted.
Deployments from before the database registry kept ``registry.json`` in the models root;
``read_legacy_registry`` reads it once so that the application can import it.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from classifiers.meta import META_FILE, read_meta
from classifiers.training import ModelInfo
from pipeline.core.errors import ConfigError, ModelError

#: The trained model shipped with the package (built by ``make model``): used when nothing is promoted.
BUNDLED_MODEL_DIR = Path(__file__).resolve().parent / "model"
#: The file-based registry of deployments from before the database registry.
LEGACY_REGISTRY_FILE = "registry.json"
#: What ``registry.json`` is renamed to once imported, so that it is imported only once.
LEGACY_IMPORTED_SUFFIX = ".imported"
STAGING_DIR = ".training"


@dataclass(frozen=True)
class ModelDir:
    """A trained model found under a models root, with the facts its ``meta.json`` records."""

    version: str
    path: Path
    created_at: str
    metrics: dict[str, Any]


@dataclass(frozen=True)
class LegacyRegistry:
    """The content of an old ``registry.json``: the promoted version and the promotions in order."""

    path: Path
    promoted: str | None
    history: tuple[str, ...]


def version_dir(root: Path, version: str) -> Path:
    """The directory of ``version`` under ``root`` (which need not exist yet).

    Raises:
        ConfigError: ``version`` is not a plain directory name.
    """
    if not version or "/" in version or "\\" in version or version.startswith("."):
        raise ConfigError(f"invalid model version {version!r}")
    return root / version


def model_dirs(root: Path) -> list[ModelDir]:
    """Every readable trained model directly under ``root``, oldest first (unreadable ones are skipped)."""
    if not root.is_dir():
        return []
    out = []
    for d in sorted(p for p in root.iterdir() if not p.name.startswith(".") and (p / META_FILE).is_file()):
        try:
            meta = read_meta(d)
        except ModelError:
            continue
        out.append(ModelDir(str(meta["version"]), d, str(meta.get("created_at", "")),
                            dict(meta.get("metrics", {}))))
    return sorted(out, key=lambda m: (m.created_at, m.version))


def staging_dir(root: Path) -> Path:
    """An empty directory under ``root`` to train a model into before ``install`` moves it in place."""
    root.mkdir(parents=True, exist_ok=True)
    staging = root / STAGING_DIR
    shutil.rmtree(staging, ignore_errors=True)
    return staging


def install(root: Path, staging: Path, info: ModelInfo) -> ModelInfo:
    """Move a model trained in ``staging`` to ``root/<version>``; returns where it now is.

    The version's hash covers data, labels, config, seed and code: if a model with the same hash is
    already installed (trained on another day), that one is kept and the new copy discarded.
    """
    fingerprint = info.version.rsplit("-", 1)[-1]
    same = [m for m in model_dirs(root) if m.version.endswith(f"-{fingerprint}")]
    if same:
        shutil.rmtree(staging)
        return replace(info, version=same[0].version, path=same[0].path, metrics=same[0].metrics)
    target = version_dir(root, info.version)
    staging.rename(target)
    return replace(info, path=target)


def resolve_model_dir(model_dir: Path | None, promoted: Path | None) -> Path:
    """The model to use: an explicitly configured ``model_dir``, else the ``promoted`` one, else the
    bundled one."""
    if model_dir is not None:
        return Path(model_dir)
    if promoted is not None:
        return Path(promoted)
    return BUNDLED_MODEL_DIR


def read_legacy_registry(root: Path) -> LegacyRegistry | None:
    """The old ``registry.json`` under ``root`` if there is one still to import.

    Raises:
        ModelError: it exists but cannot be read.
    """
    path = root / LEGACY_REGISTRY_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        promoted = data.get("promoted")
        history = tuple(str(v) for v in data.get("history", []))
    except (OSError, ValueError, AttributeError) as e:
        raise ModelError(f"cannot read the old model registry {path}: {e}; fix or remove it") from e
    return LegacyRegistry(path, str(promoted) if promoted else None, history)


def retire_legacy_registry(legacy: LegacyRegistry) -> Path:
    """Rename an imported ``registry.json`` so that it is never imported again (kept for the record)."""
    target = legacy.path.with_name(legacy.path.name + LEGACY_IMPORTED_SUFFIX)
    legacy.path.replace(target)
    return target

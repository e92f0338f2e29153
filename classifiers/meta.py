"""A trained model's ``meta.json``: read without loading spaCy, so listing versions starts fast."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.core.errors import ModelError

META_FILE = "meta.json"
_HINT = "run `make model` or `complaintdesk train --data classifiers/data --model-dir DIR` to build one"


def read_meta(model_dir: Path) -> dict[str, Any]:
    """The parsed ``meta.json`` of a model directory.

    Raises:
        ModelError: the directory or its ``meta.json`` is missing or unreadable.
    """
    meta_path = model_dir / META_FILE
    if not meta_path.is_file():
        raise ModelError(f"no trained model in {model_dir}: {_HINT}")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or not meta.get("version"):
            raise ValueError("meta.json has no version")
        return meta
    except (OSError, ValueError) as e:
        raise ModelError(f"the model in {model_dir} is corrupt ({e}): {_HINT}") from e

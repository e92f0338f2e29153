"""Configuration, built once at the edge (CLI, poller, web app) and passed down explicitly.

Values come, lowest priority first, from defaults, the TOML file ``$COMPLAINTDESK_HOME/config.toml``
(or the file named by ``COMPLAINTDESK_CONFIG``), ``COMPLAINTDESK_*`` environment variables, and
finally command-line options. Lower code never reads ``os.environ``.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.errors import ConfigError

#: Where the trained model shipped with the package lives (built by ``make model``).
BUNDLED_MODEL_DIR = Path(__file__).resolve().parent.parent / "classifiers" / "model"


class OcrSettings(BaseModel):
    """How scans are turned into text."""

    languages: str = "eng+chi_sim"
    #: named preprocessing steps, in order (see ``ocr.preprocess.STEPS``); ``ocr.read.RECOMMENDED_CHAIN``
    preprocess: list[str] = Field(
        default_factory=lambda: [
            "crop", "denoise", "upscale", "background", "orientation", "deskew", "binarize", "lines"
        ]
    )
    #: a page whose mean word confidence is below this is retried with the alternative chain
    retry_below_confidence: float = 70.0
    #: pixels per page above which an image is treated as a decompression bomb
    max_image_pixels: int = 80_000_000
    max_file_bytes: int = 100 * 1024 * 1024
    max_pages: int = 50
    pdf_dpi: int = 300
    #: OCR worker processes; 0 means one per core
    workers: int = 0
    timeout_seconds: float = 120.0


class Settings(BaseSettings):
    """Everything complaintdesk needs to run; see the README's configuration table."""

    model_config = SettingsConfigDict(env_prefix="COMPLAINTDESK_", extra="ignore")

    home: Path = Path(".complaintdesk")
    database_url: str = ""
    model_dir: Path | None = None
    ocr: OcrSettings = Field(default_factory=OcrSettings)
    #: days from intake to the case's due date
    due_days: int = 15

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'complaintdesk.db').resolve()}"

    @property
    def blob_dir(self) -> Path:
        return self.home / "originals"

    @property
    def models_root(self) -> Path:
        """Where trained and promoted model versions of this deployment live."""
        return self.home / "models"


def load_settings(**overrides: Any) -> Settings:
    """Build the settings from file, environment and ``overrides`` (command-line options).

    Raises:
        ConfigError: the config file cannot be read or a value is invalid.
    """
    clean = {k: v for k, v in overrides.items() if v is not None}
    home = Path(clean.get("home") or os.environ.get("COMPLAINTDESK_HOME", ".complaintdesk"))
    config_path = Path(os.environ.get("COMPLAINTDESK_CONFIG", home / "config.toml"))
    file_values: dict[str, Any] = {}
    if config_path.is_file():
        try:
            file_values = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"cannot read config file {config_path}: {e}") from e
    try:
        # Environment beats the file: read env first, then fill in what it left unset from the file.
        from_env = Settings()
        merged = {**file_values, **from_env.model_dump(exclude_unset=True), **clean}
        return Settings.model_validate(merged)
    except ValidationError as e:
        raise ConfigError(f"invalid configuration: {e}") from e

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

from ocr.settings import OcrSettings
from pipeline.core.errors import ConfigError

#: Where the trained model shipped with the package lives (built by ``make model``).
BUNDLED_MODEL_DIR = Path(__file__).resolve().parent.parent / "classifiers" / "model"


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
    try:
        if config_path.is_file():  # raises too, when the home folder may not be entered
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

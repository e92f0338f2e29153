"""Configuration, built once at the edge (CLI, poller, web app) and passed down explicitly.

One ``Settings`` object holds everything, the e-mail channel's ``imap``/``smtp`` and the ``ocr`` part
included; ``load_settings`` is the only loader. Values come, lowest priority first, from defaults, the
TOML file ``HOME/config.toml`` (or the file named by ``COMPLAINTDESK_CONFIG``; tables ``[imap]``,
``[smtp]``, ``[ocr]``), ``COMPLAINTDESK_*`` environment variables (``COMPLAINTDESK_IMAP_HOST`` is
``imap.host``), and finally command-line options. HOME is ``--home``, else ``COMPLAINTDESK_HOME``, else
the per-user data directory, so the config file is found under the home the command line names.

Lower code never reads ``os.environ``: it gets this object or one of its parts. Worker processes get it
pickled or as ``model_dump()`` (passwords stay ``SecretStr``; a JSON dump masks them on purpose).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from ocr.settings import OcrSettings
from pipeline.core.errors import ConfigError
from pipeline.forms import FormSettings
from pipeline.mail.settings import ImapSettings, SmtpSettings

#: Where the trained model shipped with the package lives (built by ``make model``).
BUNDLED_MODEL_DIR = Path(__file__).resolve().parent.parent / "classifiers" / "model"
ENV_PREFIX = "COMPLAINTDESK_"
#: the default home before the per-user data directory, relative to the current folder
LEGACY_HOME = Path(".complaintdesk")


def default_home() -> Path:
    """The per-user data directory: ``~/.local/share/complaintdesk`` on Linux (``XDG_DATA_HOME`` moves it)."""
    return platformdirs.user_data_path("complaintdesk")


class DatabaseSettings(BaseModel):
    """``[db]``: PostgreSQL's connection pool and timeouts (``storage.PoolOptions``); SQLite ignores them.

    ``COMPLAINTDESK_DB_POOL_SIZE=20`` is ``pool_size = 20`` in ``[db]``.
    """

    model_config = ConfigDict(extra="forbid")

    pool_size: int = Field(default=5, ge=1)
    max_overflow: int = Field(default=10, ge=0)
    pool_timeout: float = Field(default=30.0, gt=0)
    connect_timeout: int = Field(default=10, ge=1)
    #: seconds; 0 means no limit
    statement_timeout: float = Field(default=0.0, ge=0)
    pool_pre_ping: bool = True


class StorageSettings(BaseModel):
    """``[storage]``: where the originals are kept.

    ``blobs`` is a folder (default ``HOME/originals``) or ``s3://bucket/prefix`` for an S3-compatible
    object store shared by several machines; then ``HOME/originals`` is each machine's local cache, and
    the ``s3_*`` values (else boto3's own ``AWS_*`` variables and ``~/.aws``) say where and who.
    """

    model_config = ConfigDict(extra="forbid")

    blobs: str = ""
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None

    @field_validator("blobs")
    @classmethod
    def _s3_or_folder(cls, v: str) -> str:
        if "://" in v and not v.startswith("s3://"):
            raise ValueError("expected a folder or s3://bucket/prefix")
        return v
class WebSettings(BaseModel):
    """``[web]``: limits of the web app (``complaintdesk serve``).

    ``COMPLAINTDESK_WEB_MAX_UPLOAD_BYTES=50000000`` is ``max_upload_bytes = 50000000`` in ``[web]``.
    Each file is also held to ``ocr.max_file_bytes`` when it is processed (over it: quarantined).
    """

    model_config = ConfigDict(extra="forbid")

    #: the largest upload request (all its files together); a larger one is refused (413) unread
    max_upload_bytes: int = Field(default=200 * 1024 * 1024, ge=1024)
    #: the most files one upload may carry
    max_upload_files: int = Field(default=100, ge=1)


class SlaSettings(BaseModel):
    """One department's service levels (a ``[sla.<department>]`` table): days to the first answer to
    the citizen and to resolution; a value left out is the deployment's default."""

    model_config = ConfigDict(extra="forbid")

    first_response_days: float | None = Field(default=None, gt=0)
    resolution_days: float | None = Field(default=None, gt=0)


class Settings(BaseModel):
    """Everything complaintdesk needs to run; see the README's configuration table.

    A plain model: building or validating one never reads the environment (``load_settings`` does,
    once), so ``Settings.model_validate(s.model_dump())`` in a worker process gives back ``s``.
    """

    model_config = ConfigDict(extra="ignore")

    home: Path = Field(default_factory=default_home)
    database_url: str = ""
    model_dir: Path | None = None
    #: days from intake to the case's due date
    due_days: int = Field(default=15, ge=1)
    #: days from intake to the first answer to the citizen (replies by e-mail, phone or letter)
    first_response_days: float = Field(default=2, gt=0)
    #: per-department service levels, by department label: ``[sla.facilities]`` in config.toml
    sla: dict[str, SlaSettings] = Field(default_factory=dict)
    #: "postgres": every accepted input is a job on the PostgreSQL task queue (PgQueuer) that
    #: ``complaintdesk worker`` processes; "" (the default): processed in-process, no queue
    queue: Literal["", "postgres"] = ""
    #: a running job whose worker has not signalled for this long is picked up by another worker
    queue_heartbeat_seconds: float = Field(default=30.0, gt=0)
    #: first wait before a failed job runs again; doubled each time (up to 5 minutes)
    queue_retry_delay_seconds: float = Field(default=10.0, ge=0)
    #: "json": one JSON object per log line (for log collectors); "text": for people
    log_format: Literal["text", "json"] = "text"
    ocr: OcrSettings = Field(default_factory=OcrSettings)
    imap: ImapSettings = Field(default_factory=ImapSettings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    #: how scanned slips are parsed as forms: the center's templates, --split's default ([forms])
    forms: FormSettings = Field(default_factory=FormSettings)
    #: the web app's upload limits ([web])
    web: WebSettings = Field(default_factory=WebSettings)
    #: where ``home`` came from ("--home", "COMPLAINTDESK_HOME", ...), set by ``load_settings`` for messages;
    #: a field, not a private attribute, so that a worker's copy equals the original
    home_origin: str = Field(default="the per-user default", repr=False)

    @field_validator("home", "model_dir")
    @classmethod
    def _absolute(cls, v: Path | None) -> Path | None:
        # absolute once, here: a worker process or a later chdir must not move the data directory
        return None if v is None else v.expanduser().absolute()

    @field_validator("database_url")
    @classmethod
    def _parsable_url(cls, v: str) -> str:
        if not v:
            return v
        if "://" not in v:
            raise ValueError("expected a URL such as postgresql+psycopg://user@host:5432/db or sqlite:///path")
        try:
            urlsplit(v).port  # noqa: B018 - parsing the port is the check
        except ValueError as e:
            raise ValueError(f"bad port: {e}") from None
        return v

    def due_rules(self) -> dict[str, tuple[float | None, float]]:
        """(first response days, resolution days) by department, ``""`` for the default: what
        ``storage.create_case(sla=...)`` and the review service's assignment take."""
        rules: dict[str, tuple[float | None, float]] = {"": (self.first_response_days, float(self.due_days))}
        for department, sla in self.sla.items():
            rules[department] = (sla.first_response_days or self.first_response_days,
                                 sla.resolution_days or float(self.due_days))
        return rules

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'complaintdesk.db').resolve()}"

    @property
    def blob_dir(self) -> Path:
        """The local store of originals (with an S3 store: this machine's cache of it)."""
        blobs = self.storage.blobs
        return Path(blobs).expanduser().absolute() if blobs and not blobs.startswith("s3://") \
            else self.home / "originals"

    @property
    def models_root(self) -> Path:
        """Where trained and promoted model versions of this deployment live."""
        return self.home / "models"

    def location_hint(self) -> str:
        """Where the data of this run lives and how to point elsewhere (for 'no database' messages)."""
        if self.database_url:
            return "the database URL comes from --database-url, COMPLAINTDESK_DATABASE_URL or the config file"
        hint = (f"data directory {self.home} (from {self.home_origin}); use --home or COMPLAINTDESK_HOME "
                "for another one, or --database-url / COMPLAINTDESK_DATABASE_URL for another database")
        legacy = LEGACY_HOME.absolute()
        if self.home != legacy and (legacy / "complaintdesk.db").is_file():
            # the default used to be ./.complaintdesk: an upgraded deployment's data is probably there
            hint += f"; there is a database in the old default place: --home {legacy}"
        return hint


class _FromEnvironment(BaseSettings, Settings):
    """The ``COMPLAINTDESK_*`` variables, read by pydantic-settings into the fields of ``Settings``."""

    # "_" splits a name once: COMPLAINTDESK_IMAP_PASSWORD_FILE is imap.password_file, the names the
    # e-mail settings always had. Unknown COMPLAINTDESK_* variables are ignored.
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="_", env_nested_max_split=1, extra="ignore"
    )


def load_settings(**overrides: Any) -> Settings:
    """Build the settings from file, environment and ``overrides`` (command-line options).

    ``overrides`` are top-level fields or, for the parts, dicts (``imap={"host": ...}``); ``None``
    means "not given" at any level, so unset options never hide the file or the environment.

    Raises:
        ConfigError: the config file cannot be read or a value is invalid (the message names it).
    """
    options = _drop_none(overrides)
    _validate(options, "the command line")
    env = _validate({}, "the environment", from_env=True)
    if options.get("home"):
        home, origin = Path(options["home"]), "--home"
    elif "home" in env:
        home, origin = Path(env["home"]), f"{ENV_PREFIX}HOME"
    else:
        home, origin = default_home(), "the per-user default"
    config_path = Path(os.environ.get(f"{ENV_PREFIX}CONFIG") or home.expanduser() / "config.toml")
    file_values = _read_file(config_path)
    _validate(file_values, str(config_path))
    if "home" in file_values and origin == "the per-user default":
        origin = f"home in {config_path}"
    built = _validate_model(_merge(file_values, env, options, {"home_origin": origin}), "the configuration")
    if built.queue == "postgres" and not built.database_url.startswith("postgresql"):
        # checked on the merged result: the queue may be set in one place and the URL in another
        raise ConfigError("COMPLAINTDESK_QUEUE=postgres keeps its jobs in PostgreSQL: set "
                          "COMPLAINTDESK_DATABASE_URL (or database_url) to a postgresql+psycopg:// URL")
    return built


def _read_file(path: Path) -> dict[str, Any]:
    try:
        if not path.is_file():  # raises too, when the home folder may not be entered
            return {}
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"cannot read config file {path}: {e}") from e


def _validate(values: dict[str, Any], source: str, *, from_env: bool = False) -> dict[str, Any]:
    """Check one source on its own, so that an error names where the bad value came from.

    Returns the values that source set (the environment's, for ``from_env``).
    """
    try:
        if from_env:
            return _FromEnvironment().model_dump(exclude_unset=True)
        Settings.model_validate(values)
        return values
    except ValidationError as e:
        raise ConfigError(_describe(e, source, from_env=from_env)) from e
    except SettingsError as e:  # a nested variable that is not valid JSON, e.g. COMPLAINTDESK_OCR_PREPROCESS
        raise ConfigError(
            f"invalid configuration in {source}: {e} (a list in a variable is JSON: '[\"crop\", \"deskew\"]')"
        ) from e


def _validate_model(values: dict[str, Any], source: str) -> Settings:
    try:
        return Settings.model_validate(values)
    except ValidationError as e:
        raise ConfigError(_describe(e, source, from_env=False)) from e


def _describe(error: ValidationError, source: str, *, from_env: bool) -> str:
    """One line per bad value: the setting's name (and variable), the problem, and the value given."""
    problems = []
    for item in error.errors(include_url=False):
        path = [str(p) for p in item["loc"]]
        name = ".".join(path)
        if from_env:
            name = f"{ENV_PREFIX}{'_'.join(path[:2]).upper()} ({name})"
        # never echo a password back, even a malformed one
        given = "" if any("password" in p for p in path) else f" (got {item.get('input')!r})"
        problems.append(f"{name}: {item['msg']}{given}")
    return f"invalid configuration in {source}: " + "; ".join(problems)


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            value = _drop_none(value)
            if not value:
                continue
        if value is not None:
            out[key] = value
    return out


def _merge(*layers: dict[str, Any]) -> dict[str, Any]:
    """Later layers win, key by key inside the tables (``[imap]``, ``[ocr]``, ``[db]``...) too."""
    out: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = _merge(out[key], value)
            else:
                out[key] = value
    return out

"""The errors complaintdesk raises, and the exit codes the CLI maps them to.

    ComplaintdeskError                 base; carries ``exit_code`` and a message for people
    ├── ConfigError                    settings are missing or inconsistent
    ├── MissingDependencyError         a program or language pack is not installed
    ├── InputError                     one input cannot be turned into a case (quarantined)
    │   ├── UnsupportedFormatError     not an image, PDF or e-mail we can read
    │   ├── UnreadableScanError        empty, truncated, corrupt or encrypted file, or no text
    │   ├── DecompressionBombError     an image whose pixel count is beyond the configured limit
    │   └── MalformedMessageError      an e-mail that cannot be parsed
    ├── OcrError                       Tesseract failed on a readable image
    ├── ModelError                     no trained model, or a model that cannot be loaded
    ├── StorageError                   the database or the original-file store failed
    │   └── CaseNotFoundError          no case with that reference
    └── MailboxError                   the IMAP server refused us or went away

Third-party exceptions are translated where they enter (``raise XError(...) from e``) so that no
pytesseract, imapclient or SQLAlchemy type escapes the package.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes; stable for scripts and cron jobs."""

    ok = 0
    bad_args = 2
    quarantined = 3  # the batch ran, but some inputs were quarantined (or, for scan, skipped: not taken)
    input_error = 4
    missing_dependency = 5
    model_error = 6
    storage_error = 7
    mailbox_error = 8
    config_error = 9
    ocr_error = 10
    other_error = 15
    interrupted = 130


class ComplaintdeskError(Exception):
    """Base of every error complaintdesk raises on purpose."""

    exit_code: ExitCode = ExitCode.other_error

    def __init__(self, message: str = "") -> None:
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        return str(self)


class ConfigError(ComplaintdeskError):
    """The configuration is missing a value or has an invalid one."""

    exit_code = ExitCode.config_error


class MissingDependencyError(ComplaintdeskError):
    """A program or data file complaintdesk needs is not installed."""

    exit_code = ExitCode.missing_dependency


class InputError(ComplaintdeskError):
    """One input cannot become a case; it goes to quarantine with this message as the reason."""

    exit_code = ExitCode.input_error


class UnsupportedFormatError(InputError):
    """The file is not a format complaintdesk reads (PNG, JPEG, TIFF, PDF, WebP, e-mail)."""


class UnreadableScanError(InputError):
    """The file is empty, truncated, corrupt or encrypted, or holds no readable text."""


class DecompressionBombError(InputError):
    """The image declares more pixels than the configured limit allows."""


class MalformedMessageError(InputError):
    """The e-mail message cannot be parsed."""


class OcrError(ComplaintdeskError):
    """Tesseract failed on an image it should have been able to read."""

    exit_code = ExitCode.ocr_error


class ModelError(ComplaintdeskError):
    """The classification model is missing or cannot be loaded."""

    exit_code = ExitCode.model_error


class StorageError(ComplaintdeskError):
    """The database or the original-file store failed."""

    exit_code = ExitCode.storage_error


class CaseNotFoundError(StorageError):
    """No case has that reference."""


class MailboxError(ComplaintdeskError):
    """The IMAP server refused the login, went away, or answered something unexpected."""

    exit_code = ExitCode.mailbox_error

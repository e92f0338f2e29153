"""The errors complaintdesk raises, and the exit codes the CLI maps them to.

    ComplaintdeskError                 base; carries ``exit_code`` and a message for people       15
    ├── UsageError                     an option or argument value the command does not accept     2
    │   └── InvalidLabelError          a label or label set that the label sets do not have
    ├── ConfigError                    settings are missing or inconsistent                        9
    ├── AccessDeniedError              the actor's role or department does not allow this         11
    ├── MissingDependencyError         a program or language pack is not installed                 5
    ├── InputError                     one input cannot be turned into a case (quarantined)        4
    │   ├── PathNotFoundError          a file or folder named on the command line does not exist
    │   ├── UnsupportedFormatError     not an image, PDF or e-mail we can read
    │   ├── UnreadableScanError        empty, truncated, corrupt or encrypted file, or no text
    │   ├── DecompressionBombError     an image whose pixel count is beyond the configured limit
    │   └── MalformedMessageError      an e-mail that cannot be parsed
    ├── OcrError                       Tesseract failed on a readable image                       10
    ├── ModelError                     no trained model, or a model that cannot be loaded          6
    ├── StorageError                   the database or the original-file store failed              7
    │   ├── CaseNotFoundError          no case with that reference
    │   ├── SchemaError                no tables yet, or an older schema   (storage.errors)
    │   ├── DuplicateCaseError         a case for the same original exists (storage.errors)
    │   ├── InvalidTransitionError     a status the case cannot move to    (storage.errors)
    │   ├── QuarantineNotFoundError    no quarantine record with that id   (storage.errors)
    │   └── ModelVersionNotFoundError  no such registered model version    (storage.errors)
    └── MailboxError                   the IMAP server refused us or went away                     8
        ├── MailboxLoginError          wrong IMAP user name or password    (pipeline.mail.imap)
        ├── MailboxBusyError           another poller holds the mailbox    (pipeline.mail.poller)
        ├── AckError                   an acknowledgment could not be sent (pipeline.mail.ack)
        └── ReplyError                 a reply to the citizen could not be sent (pipeline.review.replies)

The subclasses named with a module live next to the code that raises them and are re-exported
there; every one is a subclass of a class here, so it maps to its parent's exit code. A test
(``tests/test_exit_codes.py``) checks that no other public exception class exists in the packages.

Third-party exceptions are translated where they enter (``raise XError(...) from e``) so that no
pytesseract, imapclient or SQLAlchemy type escapes the package.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes; stable for scripts and cron jobs.

    0 success; 2 a bad option or argument value (the message names the allowed values: click's own
    usage errors and ``UsageError``); 3 the batch ran but some inputs were quarantined; 4 an input
    cannot be read, and also **a path named on the command line that does not exist, for every
    command** (``PathNotFoundError``); 5 a program is missing; 6 no usable model; 7 the database or
    original-file store failed (also an unknown case reference); 8 the mailbox failed; 9 the
    configuration is invalid (also a database URL whose port is not a number); 10 Tesseract failed;
    11 the actor's role or department does not allow the action; 15 any other complaintdesk error;
    130 interrupted (Ctrl-C). An unexpected bug exits 1 with a traceback.
    """

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
    forbidden = 11
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


class UsageError(ComplaintdeskError):
    """An option or argument has a value the command does not accept; see the command's --help."""

    exit_code = ExitCode.bad_args


class ConfigError(ComplaintdeskError):
    """The configuration is missing a value or has an invalid one."""

    exit_code = ExitCode.config_error


class AccessDeniedError(ComplaintdeskError):
    """Your role or department does not allow this; a supervisor can do it or change your role."""

    exit_code = ExitCode.forbidden


class InvalidLabelError(UsageError):
    """A label or label set that is not in the model's label sets; the message lists the allowed ones."""


class MissingDependencyError(ComplaintdeskError):
    """A program or data file complaintdesk needs is not installed."""

    exit_code = ExitCode.missing_dependency


class InputError(ComplaintdeskError):
    """One input cannot become a case; it goes to quarantine with this message as the reason.

    Raised to the top (exit code 4) only when the input cannot even be quarantined, e.g. a path
    that does not exist.
    """

    exit_code = ExitCode.input_error


class PathNotFoundError(InputError):
    """A file or folder named on the command line does not exist."""


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

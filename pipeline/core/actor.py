"""Who does something: the person behind a request, shared by the review service, the web app and the CLI.

The web app builds an ``Actor`` from its logged-in user; the CLI acts as a local supervisor named by
``--actor``. Whether an actor may do an action to a case is ``pipeline.review.can``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """What a person may do (see ``pipeline.review.access`` for the rules)."""

    scanner = "scanner"  # uploads scans; reads no case
    reviewer = "reviewer"  # the review queue and corrections, on every case
    department = "department"  # the cases of their own department: notes, status, assignment, replies
    supervisor = "supervisor"  # everything, users and models included


ROLES = tuple(r.value for r in Role)


@dataclass(frozen=True, slots=True)
class Actor:
    """A person acting: their name (kept in every audit event), role and, for department users, department.

    ``department`` is a department label of ``labels.toml``; it matters only for ``Role.department``.
    """

    name: str
    role: Role
    department: str = ""

    def __post_init__(self) -> None:
        # accept the plain string from a users table or an option, and keep the enum afterwards
        object.__setattr__(self, "role", Role(self.role))

    @classmethod
    def supervisor(cls, name: str) -> Actor:
        """A supervisor: the CLI's local user (``--actor``), scripts, tests."""
        return cls(name, Role.supervisor)

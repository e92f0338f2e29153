"""Who may do what to which case: the one authorisation predicate the service, the web app and the CLI apply.

    action        scanner   reviewer   department (own department)   supervisor
    upload          yes        -          -                            yes
    read             -        yes        yes                           yes
    queue            -        yes         -                            yes
    correct          -        yes         -                            yes
    edit_text        -        yes         -                            yes
    status           -        yes        yes                           yes
    assign           -        yes        yes                           yes
    note             -        yes        yes                           yes
    reply            -         -         yes                           yes
    quarantine       -         -          -                            yes
    models           -         -          -                            yes
    users            -         -          -                            yes

A department user touches only cases whose handling department (``Case.department``) is theirs, and
may not hand a case to another department (``can_assign_to``). Actions without a case (``queue``,
``quarantine``, ``models``, ``users``, ``upload``) are checked with ``case=None``.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pipeline.core.actor import Actor, Role
from pipeline.core.errors import AccessDeniedError

Action = Literal["upload", "read", "queue", "correct", "edit_text", "status", "assign", "note", "reply",
                 "quarantine", "jobs", "models", "users"]

_ALLOWED: dict[Role, frozenset[str]] = {
    Role.scanner: frozenset({"upload"}),
    Role.reviewer: frozenset({"read", "queue", "correct", "edit_text", "status", "assign", "note"}),
    Role.department: frozenset({"read", "status", "assign", "note", "reply"}),
    Role.supervisor: frozenset({"upload", "read", "queue", "correct", "edit_text", "status", "assign", "note",
                                "reply", "quarantine", "jobs", "models", "users"}),
}
ACTIONS: tuple[str, ...] = tuple(sorted(_ALLOWED[Role.supervisor]))


class HasDepartment(Protocol):
    """A case as the predicate sees it: a ``storage.Case`` row, or anything with its handling department."""

    department: str


def case_department(case: HasDepartment | dict[str, Any]) -> str:
    """The handling department of a ``storage.Case`` or of its ``case_to_dict`` form."""
    if isinstance(case, dict):
        return str(case.get("assigned_department") or "")
    return case.department


def can(actor: Actor, action: str, case: HasDepartment | dict[str, Any] | None = None) -> bool:
    """True if ``actor`` may do ``action`` (one of ``ACTIONS``) to ``case`` (None: no case involved).

    An unknown action is never allowed. A department user without a department may not touch any case.
    """
    if action not in _ALLOWED[actor.role]:
        return False
    if actor.role is Role.department and case is not None:
        return bool(actor.department) and case_department(case) == actor.department
    return True


def require(actor: Actor, action: str, case: HasDepartment | dict[str, Any] | None = None,
            *, reference: str = "") -> None:
    """Raise unless ``can(actor, action, case)``.

    Raises:
        AccessDeniedError: it is not allowed (the message names the actor, role and action).
    """
    if not can(actor, action, case):
        what = f" case {reference}" if reference else ""
        raise AccessDeniedError(f"{actor.name} ({actor.role.value}) may not {action}{what}")


def can_assign_to(actor: Actor, department: str) -> bool:
    """True if ``actor`` may hand a case to ``department`` (a department user: only within their own)."""
    return actor.role is not Role.department or department == actor.department


def department_scope(actor: Actor) -> str | None:
    """The department an actor's case lists are limited to (None: every case)."""
    return actor.department if actor.role is Role.department else None

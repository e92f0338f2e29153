"""The registry of trained model versions: candidates, the one promoted, and retired ones.

This table is the one registry of model versions (the model directories stay on disk under the
models root; ``pipeline.models`` keeps the two in step). At most one version is ``promoted`` at a
time; promoting another retires it, and ``rollback_model_version`` promotes the version that was
promoted before the current one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.audit import record_event
from storage.errors import ModelVersionNotFoundError
from storage.models import ModelVersion, utcnow


def register_model_version(
    session: Session,
    version: str,
    path: str,
    *,
    metrics: dict[str, Any] | None = None,
    actor: str = "system",
    now: datetime | None = None,
) -> ModelVersion:
    """Register a trained model as a candidate; re-registering updates its path and metrics."""
    existing = find_model_version(session, version)
    if existing is not None:
        existing.path = str(path)
        if metrics is not None:
            existing.metrics = dict(metrics)
        return existing
    model = ModelVersion(
        version=version, path=str(path), metrics=dict(metrics or {}), status="candidate",
        created_at=now or utcnow(),
    )
    session.add(model)
    record_event(session, "model_registered", actor=actor, detail={"version": version, "path": str(path)})
    return model


def find_model_version(session: Session, version: str) -> ModelVersion | None:
    return session.scalars(select(ModelVersion).where(ModelVersion.version == version)).one_or_none()


def get_model_version(session: Session, version: str) -> ModelVersion:
    """The registered version ``version``.

    Raises:
        ModelVersionNotFoundError: not registered (the message says how to list them).
    """
    found = find_model_version(session, version)
    if found is None:
        raise ModelVersionNotFoundError(
            f"no model version {version!r} is registered; list them with `complaintdesk models list`"
        )
    return found


def list_model_versions(session: Session) -> list[ModelVersion]:
    """Every registered version, newest first."""
    return list(session.scalars(
        select(ModelVersion).order_by(ModelVersion.created_at.desc(), ModelVersion.id.desc())))


def current_model_version(session: Session) -> ModelVersion | None:
    """The promoted version, or None if none has been promoted."""
    return session.scalars(
        select(ModelVersion).where(ModelVersion.status == "promoted")
        .order_by(ModelVersion.promoted_at.desc(), ModelVersion.id.desc()).limit(1)
    ).first()


def promote_model_version(
    session: Session, version: str, *, actor: str, now: datetime | None = None
) -> ModelVersion:
    """Make ``version`` the one in use, retiring the one promoted before.

    Raises:
        ModelVersionNotFoundError: ``version`` is not registered.
    """
    at = now or utcnow()
    model = get_model_version(session, version)
    previous = current_model_version(session)
    if previous is not None and previous.id == model.id:
        return model
    for other in session.scalars(select(ModelVersion).where(ModelVersion.status == "promoted")):
        other.status = "retired"
    model.status = "promoted"
    model.promoted_at = at
    record_event(
        session, "model_promoted", actor=actor, at=at,
        detail={"version": version, "previous": previous.version if previous else None},
    )
    return model


def retire_model_version(session: Session, version: str, *, actor: str) -> ModelVersion:
    """Take ``version`` out of use (or out of the candidates).

    Raises:
        ModelVersionNotFoundError: ``version`` is not registered.
    """
    model = get_model_version(session, version)
    model.status = "retired"
    record_event(session, "model_retired", actor=actor, detail={"version": version})
    return model


def rollback_model_version(
    session: Session, *, actor: str, now: datetime | None = None, to_none: bool = False
) -> ModelVersion | None:
    """Promote again the version that was in use before the current one.

    The version rolled back from leaves the promotion history (``promoted_at`` is cleared), so a
    second rollback goes further back instead of returning to it. With ``to_none``, rolling back the
    only promotion leaves no version promoted (the deployment falls back to its bundled model) and
    returns None.

    Raises:
        ModelVersionNotFoundError: nothing is promoted, or no earlier promoted version exists and
            ``to_none`` is false.
    """
    at = now or utcnow()
    current = current_model_version(session)
    if current is None:
        raise ModelVersionNotFoundError("no promoted model version to roll back from")
    statement = select(ModelVersion).where(
        ModelVersion.status == "retired", ModelVersion.promoted_at.is_not(None), ModelVersion.id != current.id
    )
    previous = session.scalars(
        statement.order_by(ModelVersion.promoted_at.desc(), ModelVersion.id.desc()).limit(1)).first()
    if previous is None and not to_none:
        raise ModelVersionNotFoundError("no earlier promoted model version to roll back to")
    current.status = "retired"
    current.promoted_at = None
    record_event(
        session, "model_rolled_back", actor=actor, at=at,
        detail={"from": current.version, "to": previous.version if previous else None},
    )
    if previous is None:
        return None
    return promote_model_version(session, previous.version, actor=actor, now=at)

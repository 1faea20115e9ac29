"""Attachments of a case (photos, scanned agreements): stored once under their content hash."""

from __future__ import annotations

import hashlib
import mimetypes
import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from gridman.core import config
from gridman.core.models import Incident, IncidentAttachment
from gridman.core.services.errors import ValidationError
from gridman.core.services.mediation.records import AttachmentInput
from gridman.core.services.mediation.rules import text
from gridman.core.services.permissions import Actor

MAX_BYTES = 50 * 2**20


def attachments_root(session: Session) -> Path:
    """``attachments/`` beside an SQLite file; in the data directory for PostgreSQL."""
    from gridman.core.outputs import database_file

    return attachments_root_of(database_file(session))


def attachments_root_of(db_file: Path | None) -> Path:
    """The attachments folder of the SQLite file ``db_file`` (None: PostgreSQL, the data directory)."""
    return db_file.resolve().parent / "attachments" if db_file is not None else config.data_dir() / "attachments"


def attachment_path(session: Session, sha256: str) -> Path:
    return attachments_root(session) / sha256[:2] / sha256


def store(session: Session, actor: Actor, inc: Incident, att: AttachmentInput, now: datetime) -> str:
    """Write the file under its content hash (atomically, once) and add the row. A rolled-back
    transaction may leave an unreferenced file behind: harmless, it is content-addressed."""
    name = text(att.filename, "filename", "附件文件名", required=True, max_len=200)
    assert name is not None
    name = os.path.basename(name)
    if len(att.data) > MAX_BYTES:
        raise ValidationError(f"附件 {name} 超过 50 MB", field="attachments", en=f"Attachment {name} exceeds 50 MB")
    digest = hashlib.sha256(att.data).hexdigest()
    dest = attachment_path(session, digest)
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{digest}.{os.getpid()}.tmp")
        tmp.write_bytes(att.data)
        os.replace(tmp, dest)
    session.add(IncidentAttachment(
        incident_id=inc.id, sha256=digest, filename=name, mime=att.mime or mimetypes.guess_type(name)[0],
        size=len(att.data), added_by=actor.user_id, added_at=now,
    ))
    return digest


def file_inputs(paths: Iterable[str | os.PathLike[str]]) -> list[AttachmentInput]:
    """Attachment inputs read from files (CLI, GUI file dialogs)."""
    out = []
    for p in paths:
        path = Path(p)
        try:
            out.append(AttachmentInput(path.name, path.read_bytes()))
        except OSError as exc:
            raise ValidationError(f"无法读取附件 {path}：{exc.strerror}", field="attachments",
                                  en=f"Cannot read {path}: {exc.strerror}") from exc
    return out

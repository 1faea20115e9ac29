"""The records of checked-out packages: the list an actor may see, and the database's identity
that every package carries."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from gridman.core.models import Area, ExchangePackage, ImportBatch, Setting, User
from gridman.core.services import scope
from gridman.core.services.exchange.results import PackageInfo
from gridman.core.services.permissions import Actor, Perm, require


def database_id(session: Session) -> str:
    """The id of this database (a package may only be checked in where it was checked out)."""
    v = session.scalar(select(Setting.value).where(Setting.key == "database_id"))
    return str(v) if v is not None else ""


def list_packages(session: Session, actor: Actor) -> list[PackageInfo]:
    """The packages of the actor's scope (:func:`scope.rows` on the package's area), oldest first,
    with who checked each in. Anyone who may read sees the packages of what they see (the records
    hold no register data); checking out and in need ``EXPORT`` and ``IMPORT``."""
    require(actor, Perm.READ)
    creator, importer = aliased(User), aliased(User)
    q = (select(ExchangePackage, Area.code, Area.name, creator.username, importer.username)
         .join(Area, Area.id == ExchangePackage.area_id)
         .outerjoin(creator, creator.id == ExchangePackage.created_by)
         .outerjoin(ImportBatch, ImportBatch.id == ExchangePackage.checkin_batch_id)
         .outerjoin(importer, importer.id == ImportBatch.user_id)
         .where(scope.rows(actor, ExchangePackage.area_id))
         .order_by(ExchangePackage.created_at, ExchangePackage.id))
    out = []
    for p, code, name, made_by, checked_in_by in session.execute(q):
        if (p.meta or {}).get("role") == "local":  # the record of an offline copy, not a checkout
            continue
        out.append(PackageInfo(p.package_id, code, name, p.created_at, made_by, p.file_name, p.checked_in_at,
                               p.checkin_batch_id, (p.meta or {}).get("counts"), checked_in_by))
    return out

"""The census import's bulk paths (both databases): column-wise cleaning gives exactly what cleaning
cell by cell gives, and the audit rows the database builds for new residents hold exactly the
stored values — with the characters JSON must escape — in their compact form (values only, the
field order kept in the batch), which the resident's history shows expanded; undo removes everything."""

from __future__ import annotations

from datetime import date, datetime
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from gridman.core.models import AuditEntry, Resident, ResidentTag, Tag
from gridman.core.services import audit, cleaning, people, registers
from gridman.core.services import census as ci
from gridman.core.services.census import bulk, validation, writing
from gridman.core.services.errors import ConflictError
from gridman.core.services.permissions import system_actor
from gridman.core.tasks import TaskState
from tests.census_util import counts, make_id, write_xlsx
from tests.helpers import build_tree

G1, G2 = "340104001001001", "340104001001002"
AUDITED = (*ci.RESIDENT_FIELDS, "household_id", "grid_id")


def _cell_by_cell(table_rows, col_items):
    """The per-cell loop the column-wise cleaner replaced (the reference semantics), with the
    severities of issue 16: a secondary field's error counts as a warning, a warning keeps its value."""
    out = []
    for _, raw in table_rows:
        vals, issues = {}, []
        for j, f, fn, required in col_items:
            x = raw[j]
            if (x == "" or x is None) and not required:
                continue
            c = fn(x)
            if c.issue is not None:
                issues.append((f, validation.secondary(f, c.issue)))
            if (c.issue is None or c.issue.severity != "error") and c.value is not None:
                vals[f] = c.value
        out.append((vals, issues))
    return out


def test_column_wise_cleaning_equals_cell_by_cell():
    today = date(2026, 3, 1)
    tags = cleaning.TagIndex([Tag(id=1, code="low_income", name="低保", name_en="Low income", synonyms="低保户",
                                  sensitive=False)])
    cleaners = validation.cleaners(tags, today)
    fields = ["name", "sex", "birth_date", "phone", "household_no", "relation_to_head", "tags", "note",
              "citizen_id"]
    # equal-but-different values (1, 1.0, True), blanks, dates, datetimes, bad values, repeats
    columns = {
        "name": ["张三", "", None, " ", 1, 1.0, True, "张三", "x" * 61, "李四"],
        "sex": ["男", 1, 1.0, True, "1", "", None, "f", "女性", "?"],
        "birth_date": [date(1990, 1, 1), datetime(1990, 1, 1, 0, 0), "1990-01-01", 19900101, 32874.0, 32874,
                       "2030-01-01", "1990-02-30", "", None],
        "phone": ["13800138000", 13800138000.0, 13800138000, "0551-62345678", "123", "", None, "13800138000",
                  "+86 139 0013 9000", True],
        "household_no": ["H1", 1, 1.0, 1.5, "Ｈ１", " ", None, "H1", 1e16, False],
        "relation_to_head": ["户主", "妻", "head", 1, "", None, "户主", "？", "子", "子"],
        "tags": ["低保", "低保户、低保", "nope", 1, "", None, "低保", True, 0, 0.0],
        "note": ["a", "a", 0, 0.0, False, "", None, date(2020, 1, 2), "\u3000b\u3000", "y" * 501],
        "citizen_id": [make_id(date(1990, 1, 1), "M"), make_id(date(1990, 1, 1), "M").lower(), 3.40104199e17,
                       "3.40104199001011E+17", "", None, 1, True, make_id(date(1985, 6, 1), "F"), "123"],
    }
    n = len(columns["name"])
    table_rows = [(k + 2, [columns[f][k] for f in fields]) for k in range(n)]
    col_items = [(j, f, cleaners[f], f == "name") for j, f in enumerate(fields)]
    got_fields, got_cols, got_issues = validation.clean_columns(table_rows, col_items, TaskState())
    assert got_fields == fields
    want = _cell_by_cell(table_rows, col_items)
    for k, (vals, iss) in enumerate(want):
        row_vals = {f: col[k] for f, col in zip(got_fields, got_cols, strict=True) if col[k] is not None}
        assert row_vals == vals, (k, row_vals, vals)
        assert got_issues.get(k, []) == iss, k
    # the cases that must stay apart although Python calls them equal
    assert [c for c in got_cols[fields.index("sex")][1:4]] == [want[1][0].get("sex"), want[2][0].get("sex"),
                                                               want[3][0].get("sex")]
    assert any(f == "name" for f, _ in got_issues[1]) and any(f == "name" for f, _ in got_issues[2])


def test_new_residents_audit_rows_hold_the_stored_values_then_undo(db, tmp_path):
    build_tree(db)
    with db.session() as s:
        admin = system_actor(s)
    before = counts(db)
    head = ["户号", "网格", "姓名", "公民身份号码", "联系电话", "与户主关系", "人口类型", "居住证号", "居住证有效期",
            "文化程度", "婚姻状况", "工作单位", "备注", "标签", "现住址"]
    rows = [head,
            ["H1", G1, "张三", make_id(date(1980, 1, 2), "M"), "13800138000", "户主", "流动", "JZ001",
             date(2027, 5, 6), "本科", "已婚", '某"公司"\\分部', "第一行\n第二行\t制表 😀", "残疾、低保",
             "马鞍山路1号"],
            ["H1", G1, "李四", make_id(date(1982, 3, 4), "F"), None, "配偶", None, None, None, None, None, None,
             None, None, None],
            ["H2", G2, "王五", None, "0551-62345678", "户主", "户籍", None, "2028/1/2", None, None, None, "'; --",
             "低保", None]]
    path = write_xlsx(tmp_path / "bulk.xlsx", rows, text_cols=(4,))
    with db.work(admin) as s:
        res = ci.import_census(s, admin, path=path)
    assert res.status == "imported", res.issues
    assert (res.inserted, res.households_created, res.tags_added) == (3, 2, 3)
    with db.session() as s:
        fields = audit.batch_fields(s, res.batch_id, "residents")
        assert fields == [*AUDITED, "tags"]
        raw = {a.row_id: a for a in s.scalars(select(AuditEntry).where(
            AuditEntry.batch_id == res.batch_id, AuditEntry.table_name == "residents"))}
        assert all(isinstance(a.changes, list) and len(a.changes) == len(fields) for a in raw.values())
        entries = {rid: SimpleNamespace(action=a.action, row_uuid=a.row_uuid, username=a.username, user_id=a.user_id,
                                        changes=audit.expand(a.changes, fields)) for rid, a in raw.items()}
        tag_code = dict(s.execute(select(Tag.id, Tag.code)).all())
        stored = list(s.scalars(select(Resident).order_by(Resident.id)))
        assert len(stored) == len(entries) == 3
        for r in stored:
            want = {k: [None, audit.jsonable(getattr(r, k))] for k in AUDITED if getattr(r, k) is not None}
            codes = [tag_code[t] for t in s.scalars(select(ResidentTag.tag_id).where(ResidentTag.resident_id == r.id)
                                                    .order_by(ResidentTag.id))]
            if codes:
                want["tags"] = [None, codes]
            e = entries[r.id]
            assert (e.action, e.row_uuid, e.username, e.user_id) == ("insert", r.uuid, admin.username, admin.user_id)
            assert e.changes == want, r.name
        zs = next(r for r in stored if r.name == "张三")
        assert entries[zs.id].changes["note"] == [None, "第一行\n第二行\t制表 😀"]
        assert entries[zs.id].changes["employer"] == [None, '某"公司"\\分部']
        assert entries[zs.id].changes["residence_permit_expiry"] == [None, "2027-05-06"]
        assert entries[zs.id].changes["tags"] == [None, ["disabled", "low_income"]]  # the cell's order
        ls = next(r for r in stored if r.name == "李四")
        assert "tags" not in entries[ls.id].changes and "phone" not in entries[ls.id].changes
        # the resident's history (what the form shows) has the expanded entry, ID masked for roles without it
        hist = registers.resident_history(s, admin, zs.id)
        assert [(h.action, h.changes) for h in hist] == [("insert", entries[zs.id].changes)]
    with db.work(admin) as s:
        u = ci.undo_import(s, admin, batch_id=res.batch_id)
    assert (u.residents_deleted, u.households_deleted, u.tags_removed) == (3, 2, 3)
    after = counts(db)
    assert {k: after[k] for k in ("residents", "households", "resident_tags")} == {
        k: before[k] for k in ("residents", "households", "resident_tags")}


def test_history_of_an_imported_resident_then_edited(db, tmp_path):
    """The compact insert entry and a later ORM update read back as one history; undo is refused."""
    build_tree(db)
    with db.session() as s:
        admin = system_actor(s)
    cid = make_id(date(1980, 1, 2), "M")
    path = write_xlsx(tmp_path / "one.xlsx", [["户号", "网格", "姓名", "公民身份号码", "联系电话", "与户主关系"],
                                              ["H1", G1, "张三", cid, "13800138000", "户主"]])
    with db.work(admin) as s:
        res = ci.import_census(s, admin, path=path)
    assert res.status == "imported", res.issues
    with db.session() as s:
        rid = s.scalar(select(Resident.id).where(Resident.citizen_id == cid))
    with db.work(admin) as s:
        people.update_resident(s, admin, rid, expected_version=1, phone="13900139000")
    with db.session() as s:
        hist = registers.resident_history(s, admin, rid)
    assert [h.action for h in hist] == ["update", "insert"]
    assert hist[0].changes["phone"] == ["13800138000", "13900139000"]
    assert hist[1].changes["phone"] == [None, "13800138000"]
    assert hist[1].changes["citizen_id"] == [None, cid] and hist[1].changes["name"] == [None, "张三"]
    with db.work(admin) as s, pytest.raises(ConflictError):
        ci.undo_import(s, admin, batch_id=res.batch_id)


def test_bulk_uuids_are_version_7_ordered_and_unique():
    import uuid

    a, b = list(bulk.uuid7s(5000)), list(bulk.uuid7s(5000))
    parsed = [uuid.UUID(x) for x in a + b]
    assert {(u.version, u.variant) for u in parsed} == {(7, uuid.RFC_4122)}
    assert a == sorted(a) and b == sorted(b) and len(set(a) | set(b)) == 10_000
    assert all(str(u) == x for u, x in zip(parsed, a + b, strict=True))  # canonical lower-case form


def _indexes(s) -> list[tuple[str, str]]:
    from sqlalchemy import text

    return sorted(s.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name IN "
                                 "('residents', 'households', 'audit_log', 'resident_tags')")).all())


def test_first_big_import_rebuilds_plain_indexes_and_always_restores_them(sqlite_db, tmp_path, monkeypatch):
    """SQLite: a table that at least doubles gets its plain indexes dropped during the insert and
    built again after — the same indexes, in the same transaction, even when the write fails."""
    from sqlalchemy import text

    build_tree(sqlite_db)
    with sqlite_db.session() as s:
        admin = system_actor(s)
        before = _indexes(s)
    assert any(n == "ix_residents_grid_name" for n, _ in before)
    monkeypatch.setattr(bulk, "REBUILD_MIN_ROWS", 1)
    rows = [["户号", "网格", "姓名", "公民身份号码", "与户主关系"]] + [
        [f"H{k}", G1, f"居民{k}", make_id(date(1980, 1, 1) + (date(1980, 1, 2) - date(1980, 1, 1)) * k, "MF"[k % 2]),
         "户主"] for k in range(30)]
    path = write_xlsx(tmp_path / "first.xlsx", rows)
    dropped: list[list[str]] = []
    real_write = writing.write

    def spy(session, *a, **k):  # what the database has while the rows go in
        dropped.append([n for n, _ in _indexes(session)])
        return real_write(session, *a, **k)

    monkeypatch.setattr(writing, "write", spy)
    with sqlite_db.work(admin) as s:
        res = ci.import_census(s, admin, path=path)
    assert res.status == "imported" and res.inserted == 30
    assert "ix_residents_grid_name" not in dropped[0] and "sqlite_autoindex_residents_1" in dropped[0]
    with sqlite_db.session() as s:
        assert _indexes(s) == before
        plan = " ".join(str(r) for r in s.execute(text(
            "EXPLAIN QUERY PLAN SELECT id FROM residents WHERE grid_id = 1 AND name = '居民1'")).all())
        assert "ix_residents_grid_name" in plan

    def boom(*_a, **_k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(writing, "write", boom)
    path2 = write_xlsx(tmp_path / "second.xlsx", [rows[0]] + [
        [f"J{k}", G1, f"新人{k}", None, "户主"] for k in range(40)])
    with sqlite_db.session() as s:
        with pytest.raises(RuntimeError):
            ci.import_census(s, admin, path=path2)
        assert _indexes(s) == before  # rebuilt before the error left the import, not only by the rollback
        s.rollback()

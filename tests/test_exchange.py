"""Offline exchange (issue 7): check out, edit the workbook with openpyxl or in a second gridman
database, change rows centrally, check in, undo — on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select, update

from gridman.core import idcard
from gridman.core.db import Database, open_database
from gridman.core.models import (
    Area,
    AuditEntry,
    ExchangePackage,
    Household,
    ImportBatch,
    Incident,
    IncidentStep,
    Resident,
    Setting,
    VisitLog,
    new_uuid,
)
from gridman.core.services import exchange, people, scope
from gridman.core.services.exchange.workbook import REGISTERS
from gridman.core.services.permissions import Actor, system_actor
from tests.helpers import signed_in

COMMUNITY = "340104001001"  # 笔架山怡景园社区 of the demo sample
G1, G2 = "340104001001001", "340104001001002"
OTHER_COMMUNITY = "340104002001"
T_OFFLINE = datetime(2026, 11, 5, 10, 0, 0)
T_CENTRAL = datetime(2026, 11, 6, 15, 30, 0)


def admin_of(db: Database) -> Actor:
    with db.session() as s:
        return system_actor(s)


def checkout(db: Database, path: Path, **kw: Any) -> exchange.CheckoutResult:
    a = admin_of(db)
    with db.work(a) as s:
        return exchange.checkout(s, a, out=path, **kw)


def checkin(db: Database, path: Path, **kw: Any) -> exchange.CheckinResult:
    a = admin_of(db)
    with db.work(a) as s:
        return exchange.checkin(s, a, path=path, **kw)


def snapshot(db: Database) -> dict[str, dict[str, tuple]]:
    """Every exchanged row of the whole database, canonical, by uuid (plus its version)."""
    out: dict[str, dict[str, tuple]] = {}
    with db.session() as s:
        for reg in REGISTERS:
            rows = {}
            for r in s.execute(exchange.register_select(reg, lambda t: t.c.id > 0)):
                m = r._mapping
                rows[m["uuid"]] = (m["version"] if reg.versioned else 0, *exchange.canon_row(reg, m, False))
            out[reg.key] = rows
    return out


def changed(before: dict, after: dict) -> dict[str, set[str]]:
    return {k: {u for u in set(before[k]) | set(after[k]) if before[k].get(u) != after[k].get(u)} for k in before}


class Sheet:
    """A register sheet opened with openpyxl, addressed by Chinese header and row uuid."""

    def __init__(self, wb: Any, title: str) -> None:
        self.ws = wb[title]
        self.col = {c.value: c.column for c in self.ws[1] if c.value}

    def row_of(self, uuid: str) -> int:
        for r in range(2, self.ws.max_row + 1):
            if self.ws.cell(r, 1).value == uuid:
                return r
        raise KeyError(uuid)

    def get(self, uuid: str, header: str) -> Any:
        return self.ws.cell(self.row_of(uuid), self.col[header]).value

    def set(self, uuid: str, header: str, value: Any) -> None:
        self.ws.cell(self.row_of(uuid), self.col[header], value)

    def append(self, values: dict[str, Any]) -> int:
        r = self.ws.max_row + 1
        for h, v in values.items():
            self.ws.cell(r, self.col[h], v)
        return r

    def delete(self, uuid: str) -> None:
        self.ws.delete_rows(self.row_of(uuid))


def pick_rows(db: Database) -> dict[str, Any]:
    """Rows of the demo community the scenario edits."""
    with db.session() as s:
        g1 = s.scalar(select(Area.id).where(Area.code == G1))
        g2 = s.scalar(select(Area.id).where(Area.code == G2))
        res = list(s.scalars(select(Resident).where(Resident.grid_id == g1).order_by(Resident.id).limit(4)))
        visited = select(VisitLog.household_id).where(VisitLog.household_id.is_not(None))
        hh_gone = s.scalar(select(Household).where(Household.grid_id == g2, Household.id.not_in(visited))
                           .order_by(Household.id.desc()).limit(1))
        inc = s.scalar(select(Incident).where(Incident.grid_id == g1, Incident.level == "grid",
                                              Incident.status == "in_progress").order_by(Incident.id).limit(1))
        return {"g1": g1, "g2": g2, "r": [(r.id, r.uuid, r.version) for r in res],
                "hh_gone": (hh_gone.id, hh_gone.uuid), "inc": (inc.id, inc.uuid, inc.version)}


def edit_workbook(path: Path, rows: dict[str, Any], out: Path) -> None:
    """The offline edits, done in the workbook with openpyxl."""
    wb = load_workbook(path)
    res = Sheet(wb, "实有人口")
    r1, r2, _r3, r4 = (x[1] for x in rows["r"])
    res.set(r1, "联系电话", "13900000001")  # offline only
    res.set(r2, "联系电话", "13900000002")  # offline, and centrally too → conflict
    res.set(r4, "网格编码", G2)  # moved to another grid
    hh = Sheet(wb, "户")
    hh.append({"户号": "OFFLINE-0001", "网格编码": G1, "现住址": "离线新增小区1栋101室", "户类型": "家庭户"})
    res.append({"姓名": "离线甲", "公民身份号码": idcard.make("340104", date(1980, 3, 4), 7, "M"), "户号": "OFFLINE-0001",
                "网格编码": G1, "与户主关系": "户主", "人口类型": "户籍人口", "状态": "在住"})
    res.append({"姓名": "离线乙", "公民身份号码": idcard.make("340104", date(1982, 5, 6), 7, "F"), "户号": "OFFLINE-0001",
                "网格编码": G1, "与户主关系": "配偶", "人口类型": "户籍人口", "状态": "在住"})
    hh.delete(rows["hh_gone"][1])  # deleted offline: reported, not deleted
    steps = Sheet(wb, "处置记录")
    inc_uuid = rows["inc"][1]
    steps.append({"事件标识": inc_uuid, "时间": T_OFFLINE, "操作人账号": "warden", "动作": "上报上级",
                  "原层级": "网格", "新层级": "社区", "原状态": "处理中", "新状态": "已上报", "说明": "离线上报社区"})
    wb.save(out)


def central_edits(db: Database, rows: dict[str, Any]) -> None:
    """The central edits, through the services, after the checkout."""
    a = admin_of(db)
    (_, _, _), (r2id, _, r2v), (r3id, _, r3v), _ = rows["r"]
    with db.work(a) as s:
        people.update_resident(s, a, r2id, expected_version=r2v, phone="13800000002")
        people.update_resident(s, a, r3id, expected_version=r3v, employer="中心修改单位")
    escalate_centrally(db, rows["inc"][0], T_CENTRAL)


def escalate_centrally(db: Database, incident_id: int, at: datetime) -> None:
    a = admin_of(db)
    with db.work(a) as s:
        top = s.scalar(select(func.max(IncidentStep.seq)).where(IncidentStep.incident_id == incident_id))
        s.add(IncidentStep(uuid=new_uuid(), incident_id=incident_id, seq=top + 1, at=at, action="escalate",
                           from_level="grid", to_level="community", from_status="in_progress",
                           to_status="reported", note="中心上报社区"))
        s.flush()
        exchange.apply_timeline(s, a, [incident_id])


def test_checkout_writes_a_protected_workbook_with_metadata(demo_db: Database, tmp_path: Path) -> None:
    res = checkout(demo_db, tmp_path / "c.xlsx", area_code=COMMUNITY)
    with demo_db.session() as s:
        com = s.scalar(select(Area).where(Area.code == COMMUNITY))
        grids = list(s.scalars(scope.subtree_ids(com.path, level="grid")))
        n_res = s.scalar(select(func.count()).select_from(Resident).where(Resident.grid_id.in_(grids)))
        n_steps = s.scalar(select(func.count()).select_from(IncidentStep).join(Incident)
                           .where(Incident.grid_id.in_(grids)))
        rec = s.scalar(select(ExchangePackage).where(ExchangePackage.package_id == res.package_id))
        dbid = s.scalar(select(Setting.value).where(Setting.key == "database_id"))
    assert res.counts["residents"] == n_res > 0 and res.counts["incident_steps"] == n_steps > 0
    assert rec is not None and rec.checksum == res.checksum
    wb = load_workbook(tmp_path / "c.xlsx")
    for reg in REGISTERS:
        ws = wb[reg.sheet]
        assert ws.protection.sheet and not ws.protection.insertRows and not ws.protection.deleteRows
        assert ws.cell(1, 1).value == "UUID" and ws.column_dimensions["A"].hidden
        assert ws.cell(2, 1).protection.locked
    ws = wb["实有人口"]
    hdr = {c.value: c.column for c in ws[1]}
    assert ws.cell(2, hdr["姓名"]).protection.locked is False  # data cells stay editable
    assert ws.cell(1, 2).value == "版本" and ws.column_dimensions["B"].hidden
    sex_col = ws.cell(1, hdr["性别"]).column_letter
    dv = [d for d in ws.data_validations.dataValidation if str(d.sqref).startswith(f"{sex_col}2")]
    assert dv, "the sex column has a drop-down"
    lists = wb["_列表"]
    ref = dv[0].formula1.split("!")[1].replace("$", "").split(":")[0]
    assert lists[ref].value in ("男", "女")
    assert ws.cell(2, hdr["性别"]).value in ("男", "女")
    meta = {r[0].value: r[2].value for r in wb["_元数据"].iter_rows(min_row=2)}
    assert meta["package_id"] == res.package_id and meta["area_code"] == COMMUNITY
    assert meta["source_database_id"] == dbid and meta["checksum"] == res.checksum
    assert json.loads(meta["counts"])["residents"] == n_res
    assert wb["_原始值"].sheet_state == "veryHidden"


def test_checkin_merges_and_reports_conflicts_exactly(demo_db: Database, tmp_path: Path) -> None:
    rows = pick_rows(demo_db)
    book = tmp_path / "c.xlsx"
    pkg = checkout(demo_db, book, area_code=COMMUNITY)
    edit_workbook(book, rows, tmp_path / "back.xlsx")
    central_edits(demo_db, rows)
    before = snapshot(demo_db)

    dry = checkin(demo_db, tmp_path / "back.xlsx", dry_run=True)
    assert snapshot(demo_db) == before and dry.batch_id is None
    res = checkin(demo_db, tmp_path / "back.xlsx")
    after = snapshot(demo_db)
    assert dry.counts == res.counts and dry.conflicts and len(dry.conflicts) == len(res.conflicts)

    r1, r2, r3, r4 = (x[1] for x in rows["r"])
    # conflicts are exactly the rows changed on both sides; keep-central by default
    assert {(c.register, c.uuid) for c in res.conflicts} == {("residents", r2)}
    (conf,) = res.conflicts
    phone = next(f for f in conf.fields if f.field == "phone")
    assert (phone.offline, phone.central, phone.clash) == ("13900000002", "13800000002", True)
    assert phone.original not in (None, "13900000002", "13800000002")
    with demo_db.session() as s:
        def res_of(u: str) -> Resident:
            return s.scalar(select(Resident).where(Resident.uuid == u))

        assert res_of(r1).phone == "13900000001"
        assert res_of(r2).phone == "13800000002"
        assert res_of(r3).employer == "中心修改单位"
        assert res_of(r4).grid_id == rows["g2"]
        hh = s.scalar(select(Household).where(Household.household_no == "OFFLINE-0001"))
        members = list(s.scalars(select(Resident).where(Resident.household_id == hh.id).order_by(Resident.name)))
        assert [m.name for m in members] == ["离线乙", "离线甲"] and {m.grid_id for m in members} == {rows["g1"]}
        assert members[1].birth_date == date(1980, 3, 4) and members[1].sex == "M"
        assert s.scalar(select(Household.id).where(Household.uuid == rows["hh_gone"][1])) is not None
        steps = list(s.scalars(select(IncidentStep).where(IncidentStep.incident_id == rows["inc"][0])
                               .order_by(IncidentStep.at)))
        assert [st.note for st in steps[-2:]] == ["离线上报社区", "中心上报社区"]  # both, in time order
        assert len({st.seq for st in steps}) == len(steps)
        inc = s.get(Incident, rows["inc"][0])
        assert (inc.level, inc.status) == ("community", "reported")
        batch = s.get(ImportBatch, res.batch_id)
        assert (batch.kind, batch.package_id, batch.status) == ("exchange", pkg.package_id, "done")
        n_audit = s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.batch_id == res.batch_id))
        assert n_audit == 2 + 1 + 2 + 1  # r1, r4 updated; household; 2 residents; one step
    assert [d["uuid"] for d in res.deletions] == [rows["hh_gone"][1]]
    assert res.deletions[0]["action"] == "reported"
    # the database holds exactly the expected rows
    diff = changed(before, after)
    new_hh = {u for u in after["households"] if u not in before["households"]}
    new_res = {u for u in after["residents"] if u not in before["residents"]}
    new_steps = {u for u in after["incident_steps"] if u not in before["incident_steps"]}
    assert len(new_hh) == 1 and len(new_res) == 2 and len(new_steps) == 1
    assert diff == {"buildings": set(), "households": new_hh, "residents": {r1, r4} | new_res, "premises": set(),
                    "organisations": set(), "incidents": set(), "incident_steps": new_steps, "visit_logs": set()}

    # a second check-in of the same workbook changes nothing
    with pytest.raises(exchange.ExchangeRefused) as e:
        checkin(demo_db, tmp_path / "back.xlsx")
    assert e.value.reason == "already_checked_in" and "已" in e.value.message
    assert snapshot(demo_db) == after

    # undo brings the database back to where it was before the check-in
    a = admin_of(demo_db)
    with demo_db.work(a) as s:
        exchange.undo_checkin(s, a, res.batch_id)
    assert _same_but_versions(before, snapshot(demo_db))


def _same_but_versions(a: dict, b: dict) -> bool:
    """Undo bumps versions of the rows it restores (they changed twice); values must be back."""
    return all({u: v[1:] for u, v in a[k].items()} == {u: v[1:] for u, v in b[k].items()} for k in a)


def test_undo_refused_once_rows_changed_since(demo_db: Database, tmp_path: Path) -> None:
    rows = pick_rows(demo_db)
    book = tmp_path / "g.xlsx"
    checkout(demo_db, book, grid_codes=[G1])
    wb = load_workbook(book)
    Sheet(wb, "实有人口").set(rows["r"][0][1], "联系电话", "13911112222")
    wb.save(book)
    res = checkin(demo_db, book)
    a = admin_of(demo_db)
    with demo_db.work(a) as s:
        r = s.get(Resident, rows["r"][0][0])
        people.update_resident(s, a, r.id, expected_version=r.version, note="之后又改")
    before = snapshot(demo_db)
    with pytest.raises(exchange.ExchangeRefused) as e, demo_db.work(a) as s:
        exchange.undo_checkin(s, a, res.batch_id)
    assert e.value.reason == "touched" and "之后又被修改" in e.value.message
    assert snapshot(demo_db) == before


def _refused(db: Database, path: Path, reason: str, **kw: Any) -> str:
    before = snapshot(db)
    with pytest.raises(exchange.ExchangeRefused) as e:
        checkin(db, path, **kw)
    assert e.value.reason == reason, e.value.message
    assert snapshot(db) == before
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(ImportBatch)) == 0 or reason in ("already_checked_in", "older")
    return e.value.message


def test_refusals_leave_the_database_unchanged(demo_db: Database, tmp_path: Path) -> None:
    book = tmp_path / "g.xlsx"
    checkout(demo_db, book, grid_codes=[G1])

    def variant(name: str, fn: Any) -> Path:
        p = tmp_path / name
        wb = load_workbook(book)
        fn(wb)
        wb.save(p)
        return p

    def set_meta(key: str, value: str) -> Any:
        def f(wb: Any) -> None:
            for r in wb["_元数据"].iter_rows(min_row=2):
                if r[0].value == key:
                    r[2].value = value
        return f

    msg = _refused(demo_db, variant("meta.xlsx", set_meta("area_name", "别的社区")), "tampered")
    assert "改动" in msg
    _refused(demo_db, variant("sum.xlsx", set_meta("checksum", "0" * 64)), "tampered")

    def clear_keys(wb: Any) -> None:
        ws = wb["实有人口"]
        for r in range(2, ws.max_row + 1):
            ws.cell(r, 1).value = None
    msg = _refused(demo_db, variant("keys.xlsx", clear_keys), "keys_gone")
    assert "UUID" in msg

    def drop_key_columns(wb: Any) -> None:
        wb["户"].delete_cols(1, 2)
    _refused(demo_db, variant("cols.xlsx", drop_key_columns), "keys_gone")

    def forge_version(wb: Any) -> None:
        wb["户"].cell(2, 2).value = 99
    _refused(demo_db, variant("ver.xlsx", forge_version), "tampered")

    msg = _refused(demo_db, book, "other_area", expect_area=OTHER_COMMUNITY)
    assert OTHER_COMMUNITY in msg
    # from another database
    with demo_db.begin() as s:
        own = s.scalar(select(Setting.value).where(Setting.key == "database_id"))
        s.execute(update(Setting).where(Setting.key == "database_id").values(value="another-db"))
    msg = _refused(demo_db, book, "other_database")
    assert "另一个数据库" in msg
    with demo_db.begin() as s:
        s.execute(update(Setting).where(Setting.key == "database_id").values(value=own))
    # an older package after a newer one of the same area was checked in
    newer = tmp_path / "newer.xlsx"
    checkout(demo_db, newer, area_code=COMMUNITY)
    checkin(demo_db, newer)
    msg = _refused(demo_db, book, "older")
    assert "更新的交换包" in msg


def test_validation_errors_name_sheet_row_column(demo_db: Database, tmp_path: Path) -> None:
    rows = pick_rows(demo_db)
    book = tmp_path / "g.xlsx"
    checkout(demo_db, book, grid_codes=[G1])
    wb = load_workbook(book)
    res = Sheet(wb, "实有人口")
    res.set(rows["r"][0][1], "公民身份号码", "340104198001011235")  # bad check digit
    res.set(rows["r"][1][1], "出生日期", "某年某月")
    res.set(rows["r"][2][1], "人口类型", "外星人")
    res.set(rows["r"][3][1], "网格编码", "340104002001001")  # a grid outside the package
    wb.save(book)
    before = snapshot(demo_db)
    with pytest.raises(exchange.ExchangeInvalid) as e:
        checkin(demo_db, book)
    got = {(i.sheet, i.column) for i in e.value.issues}
    assert got == {("实有人口", "公民身份号码"), ("实有人口", "出生日期"), ("实有人口", "人口类型"), ("实有人口", "网格编码")}
    rown = {i.column: i.row for i in e.value.issues}
    assert rown["出生日期"] == res.row_of(rows["r"][1][1])
    assert snapshot(demo_db) == before


@pytest.mark.parametrize("mode", ["keep-offline", "per-field", "ask"])
def test_conflict_resolutions(demo_db: Database, tmp_path: Path, mode: str) -> None:
    if demo_db.dialect != "sqlite" and mode != "keep-offline":
        pytest.skip("resolution modes are backend-independent; one backend is enough")
    rows = pick_rows(demo_db)
    (rid, ruuid, rver) = rows["r"][0]
    book = tmp_path / "g.xlsx"
    checkout(demo_db, book, grid_codes=[G1])
    wb = load_workbook(book)
    sh = Sheet(wb, "实有人口")
    sh.set(ruuid, "联系电话", "13900000009")
    sh.set(ruuid, "工作单位", "离线单位")
    wb.save(book)
    a = admin_of(demo_db)
    with demo_db.work(a) as s:
        people.update_resident(s, a, rid, expected_version=rver, phone="13800000009")
    if mode == "ask":
        before = snapshot(demo_db)
        with pytest.raises(exchange.ConflictsPending) as e:
            checkin(demo_db, book, resolve="ask")
        assert [c.uuid for c in e.value.conflicts] == [ruuid]
        assert snapshot(demo_db) == before
        return
    kw: dict[str, Any] = {"resolve": "keep-offline"} if mode == "keep-offline" else {
        "choices": {ruuid: {"phone": "central", "employer": "offline"}}}
    res = checkin(demo_db, book, **kw)
    assert [c.uuid for c in res.conflicts] == [ruuid]
    with demo_db.session() as s:
        r = s.get(Resident, rid)
        assert r.employer == "离线单位"
        assert r.phone == ("13900000009" if mode == "keep-offline" else "13800000009")


def _apply_offline_edits_via_services(local: Database, rows: dict[str, Any]) -> None:
    """The same offline edits as edit_workbook, made in a local gridman database."""
    a = admin_of(local)
    r1, r2, _r3, r4 = (x[1] for x in rows["r"])
    with local.work(a) as s:
        def res_of(u: str) -> Resident:
            return s.scalar(select(Resident).where(Resident.uuid == u))

        for u, phone in ((r1, "13900000001"), (r2, "13900000002")):
            r = res_of(u)
            people.update_resident(s, a, r.id, expected_version=r.version, phone=phone)
        res_of(r4).grid_id = s.scalar(select(Area.id).where(Area.code == G2))
        g1 = s.scalar(select(Area.id).where(Area.code == G1))
        people.register_household(s, a, grid_id=g1, household_no="OFFLINE-0001", address="离线新增小区1栋101室", members=[
            {"name": "离线甲", "citizen_id": idcard.make("340104", date(1980, 3, 4), 7, "M"), "relation_to_head": "head",
             "population_type": "registered", "status": "active"},
            {"name": "离线乙", "citizen_id": idcard.make("340104", date(1982, 5, 6), 7, "F"), "relation_to_head": "spouse",
             "population_type": "registered", "status": "active"},
        ])
        for m in s.scalars(select(Resident).join(Household).where(Household.household_no == "OFFLINE-0001")):
            m.current_address = None  # the Excel path leaves it empty
        hh = s.scalar(select(Household).where(Household.uuid == rows["hh_gone"][1]))
        for m in s.scalars(select(Resident).where(Resident.household_id == hh.id)):
            m.household_id = None
        s.flush()
        s.delete(hh)
        inc = s.scalar(select(Incident).where(Incident.uuid == rows["inc"][1]))
        top = s.scalar(select(func.max(IncidentStep.seq)).where(IncidentStep.incident_id == inc.id))
        warden = s.scalar(select(exchange.USERS.c.id).where(exchange.USERS.c.username == "warden"))
        s.add(IncidentStep(uuid=new_uuid(), incident_id=inc.id, seq=top + 1, at=T_OFFLINE, actor_id=warden,
                           action="escalate", from_level="grid", to_level="community", from_status="in_progress",
                           to_status="reported", note="离线上报社区"))
        s.flush()
        exchange.apply_timeline(s, a, [inc.id])


def _content(db: Database, base: dict[str, Any]) -> dict[str, Any]:
    """The database without the uuids of rows created offline (they differ between the paths)."""
    snap = snapshot(db)
    new = {u for k, rows_ in snap.items() for u in rows_ if u not in base[k]}
    out: dict[str, Any] = {}
    for k, rows_ in snap.items():
        out[k] = sorted(repr(tuple("NEW" if x in new else x for x in v[1:])) for v in rows_.values())
    return out


def test_round_trip_through_a_local_database_matches_the_excel_path(demo_db: Database, tmp_path: Path) -> None:
    rows = pick_rows(demo_db)
    book = tmp_path / "c.xlsx"
    checkout(demo_db, book, area_code=COMMUNITY)
    edit_workbook(book, rows, tmp_path / "excel.xlsx")

    local = open_database(tmp_path / "local.sqlite")
    try:
        la = admin_of(local)
        with local.work(la) as s:
            opened = exchange.open_package(s, la, path=book)
        assert opened.counts["residents"] > 0 and not opened.refreshed
        with local.session() as s:  # same uuids and versions as the centre
            r = s.scalar(select(Resident).where(Resident.uuid == rows["r"][0][1]))
            assert r.version == rows["r"][0][2]
        _apply_offline_edits_via_services(local, rows)
        with local.work(la) as s:
            exchange.export_local(s, la, out=tmp_path / "local.xlsx")
        # refreshing over unexported changes is refused; after the export it is allowed
        with local.work(la) as s:
            again = exchange.open_package(s, la, path=book)
        assert again.refreshed
    finally:
        local.dispose()

    central_edits(demo_db, rows)
    base = snapshot(demo_db)
    r_xl = checkin(demo_db, tmp_path / "excel.xlsx")
    via_excel = _content(demo_db, base)
    a = admin_of(demo_db)
    with demo_db.work(a) as s:
        exchange.undo_checkin(s, a, r_xl.batch_id)
    assert _same_but_versions(base, snapshot(demo_db))
    r_loc = checkin(demo_db, tmp_path / "local.xlsx")
    via_local = _content(demo_db, base)
    assert {(c.register, c.uuid) for c in r_loc.conflicts} == {(c.register, c.uuid) for c in r_xl.conflicts}
    assert [d["uuid"] for d in r_loc.deletions] == [d["uuid"] for d in r_xl.deletions]
    for k in via_excel:
        assert via_local[k] == via_excel[k], k


def test_cli_exchange_commands(sqlite_demo: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gridman.cli import main

    dbp = str(sqlite_demo.sqlite_path)
    sqlite_demo.dispose()
    book = tmp_path / "g.xlsx"

    err: list[str] = []

    def run(*args: str) -> tuple[int, Any]:
        rc = main([*signed_in(dbp), "exchange", *args])
        cap = capsys.readouterr()
        err.append(cap.err)
        out = cap.out.strip()
        return rc, (json.loads(out) if out.startswith("{") else out)

    rc, out = run("checkout", "--area", G1, "--out", str(book), "--json")
    assert rc == 0 and out["area_code"] == G1
    wb = load_workbook(book)
    ws = wb["户"]
    hdr = {c.value: c.column for c in ws[1]}
    ws.cell(2, hdr["联系电话"], "13700000000")
    uuid = ws.cell(2, 1).value
    wb.save(book)
    db = open_database(dbp)
    with db.work(admin_of(db)) as s:
        hh = s.scalar(select(Household).where(Household.uuid == uuid))
        hh.phone = "13600000000"
    db.dispose()
    rc, out = run("checkin", str(book), "--dry-run", "--json")
    assert rc == 0 and out["dry_run"] and out["counts"]["households"]["conflicts"] == 1
    rc, out = run("checkin", str(book), "--resolve", "ask", "--json")
    assert rc != 0 and out["conflicts"][0]["uuid"] == uuid
    rc, out = run("checkin", str(book), "--resolve", "keep-offline", "--json")
    assert rc == 0 and out["batch_id"]
    rc, lst = run("list", "--json")
    assert lst["packages"][0]["checkin_batch_id"] == out["batch_id"]
    rc, out2 = run("undo", str(out["batch_id"]), "--json")
    assert rc == 0 and out2["reverted"]["households"] == 1
    rc, _ = run("checkin", str(book), "--json")
    assert rc == 0
    rc, _ = run("checkin", str(book), "--json")
    assert rc == 2 and "不能重复导入" in err[-1]
    # the offline side: a local database from a fresh package, and the returned workbook
    local, back = tmp_path / "local.sqlite", tmp_path / "back.xlsx"
    rc, _ = run("checkout", "--area", G1, "--out", str(book), "--json")
    rc, out = run("open", str(book), "--db", str(local), "--json")
    assert rc == 0 and out["counts"]["households"] > 0 and out["refreshed"] is False
    rc, out = run("export", "--db", str(local), "--out", str(back), "--json")
    assert rc == 0 and back.exists()
    rc, out = run("checkin", str(back), "--json")
    assert rc == 0 and out["conflicts"] == [] and sum(v.get("updated", 0) for v in out["counts"].values()) == 0


def test_checkin_is_set_based_on_an_unchanged_street(demo_db: Database, tmp_path: Path) -> None:
    """A whole street round trip without edits: nothing inserted, updated or reported."""
    book = tmp_path / "s.xlsx"
    res = checkout(demo_db, book, area_code="340104002")
    before = snapshot(demo_db)
    r = checkin(demo_db, book)
    assert snapshot(demo_db) == before
    tot = {k: sum(v.get(k, 0) for v in r.counts.values()) for k in ("inserted", "updated", "conflicts", "deleted_offline")}
    assert tot == {"inserted": 0, "updated": 0, "conflicts": 0, "deleted_offline": 0}
    assert sum(v.get("unchanged", 0) for v in r.counts.values()) == sum(res.counts.values())


def test_workbook_survives_excel_style_rewrites(tmp_path: Path) -> None:
    """Cells as Excel users type them (numbers for phones, text dates, labels) clean to the same values."""
    from gridman.core.services.exchange.workbook import BY_KEY, CellError, clean_cell

    cols = {c.header: c for c in BY_KEY["residents"].cols}
    assert clean_cell(cols["联系电话"], 13912345678.0) == "13912345678"
    assert clean_cell(cols["出生日期"], "2001/2/3") == "2001-02-03"
    assert clean_cell(cols["出生日期"], "2001年2月3日") == "2001-02-03"
    assert clean_cell(cols["性别"], "女") == "F" and clean_cell(cols["人口类型"], "floating") == "floating"
    with pytest.raises(CellError):
        clean_cell(cols["出生日期"], "明天")
    inc = {c.header: c for c in BY_KEY["incidents"].cols}
    assert clean_cell(inc["上报时间"], datetime(2026, 1, 2, 3, 4, 5, 999_999)) == "2026-01-02 03:04:06"


def test_confirmed_deletions_and_their_undo(demo_db: Database, tmp_path: Path) -> None:
    book = tmp_path / "g.xlsx"
    checkout(demo_db, book, grid_codes=[G1])
    wb = load_workbook(book)
    visits, prem, hh = Sheet(wb, "走访记录"), Sheet(wb, "场所"), Sheet(wb, "户")
    v_uuid, p_uuid, h_uuid = visits.ws.cell(2, 1).value, prem.ws.cell(2, 1).value, hh.ws.cell(2, 1).value
    visits.set(v_uuid, "删除（填“是”）", "是")  # marked in the sheet
    prem.delete(p_uuid)  # or the row removed
    hh.set(h_uuid, "删除（填“是”）", "是")  # residents still live there: must not go
    wb.save(book)
    before = snapshot(demo_db)
    dry = checkin(demo_db, book, dry_run=True)
    assert {d["uuid"]: d["action"] for d in dry.deletions} == {v_uuid: "reported", p_uuid: "reported", h_uuid: "reported"}
    res = checkin(demo_db, book, confirm_deletes=True)
    acts = {d["uuid"]: d["action"] for d in res.deletions}
    assert acts == {v_uuid: "deleted", p_uuid: "deleted", h_uuid: "kept_referenced"}
    after = snapshot(demo_db)
    assert changed(before, after) == {**{k: set() for k in before}, "visit_logs": {v_uuid}, "premises": {p_uuid}}
    assert v_uuid not in after["visit_logs"] and h_uuid in after["households"]
    a = admin_of(demo_db)
    with demo_db.work(a) as s:
        undone = exchange.undo_checkin(s, a, res.batch_id)
    assert undone.reverted == {"visit_logs": 1, "premises": 1}
    assert snapshot(demo_db) == before


def test_clerk_gets_masked_ids_and_they_survive_the_round_trip(demo_db: Database, tmp_path: Path) -> None:
    from gridman.core.enums import Role
    from tests.helpers import make_user

    clerk = make_user(demo_db, "clerk_x", Role.CLERK)
    rows = pick_rows(demo_db)
    book = tmp_path / "g.xlsx"
    with demo_db.work(clerk) as s:
        exchange.checkout(s, clerk, out=book, grid_codes=[G1])
    wb = load_workbook(book)
    sh = Sheet(wb, "实有人口")
    ruuid = rows["r"][0][1]
    shown = sh.get(ruuid, "公民身份号码")
    assert "*" in shown and len(shown) == 18
    sh.set(ruuid, "联系电话", "13955556666")
    wb.save(book)
    before = snapshot(demo_db)
    with demo_db.work(clerk) as s:
        res = exchange.checkin(s, clerk, path=book)
    assert sum(v.get("updated", 0) for v in res.counts.values()) == 1
    assert changed(before, snapshot(demo_db))["residents"] == {ruuid}
    with demo_db.session() as s:
        r = s.get(Resident, rows["r"][0][0])
        assert r.phone == "13955556666" and "*" not in r.citizen_id


def test_streamed_cells_read_back_exactly(tmp_path: Path) -> None:
    """Text with line breaks and XML specials, numbers, dates and date-times survive the writer."""
    from gridman.core.services.exchange.xlsx import Book, SheetRows, write_workbook

    rows = [["a\r\nb <&> \"c\"", 13912345678.0, 117.2345678, date(2001, 2, 3), datetime(2026, 1, 2, 3, 4, 5), 7]]
    write_workbook(tmp_path / "t.xlsx", [SheetRows("表", ["文本", "电话", "经度", "日期", "时间", "整数"], rows,
                                                   kinds=["text", "float", "float", "date", "datetime", "int"])])
    back = Book(tmp_path / "t.xlsx").rows("表")
    assert back[0] == ["文本", "电话", "经度", "日期", "时间", "整数"]
    text, phone, lon, d, dt, n = back[1]
    assert (text, phone, lon, n) == ("a\r\nb <&> \"c\"", 13912345678.0, 117.2345678, 7)
    assert str(d)[:10] == "2001-02-03" and str(dt)[:19] == "2026-01-02 03:04:05"
    wb = load_workbook(tmp_path / "t.xlsx")  # and openpyxl reads the streamed sheet too
    assert wb["表"].cell(2, 1).value == "a\r\nb <&> \"c\""


# --- progress and cancel (tasks.TaskState) -----------------------------------------------------------


def cancelling_task(at: float) -> tuple[Any, list[float]]:
    """A task that records the fractions reported and cancels itself at the first one ≥ ``at``."""
    from gridman.core.tasks import TaskState

    seen: list[float] = []

    def cb(f: float, _m: str) -> None:
        seen.append(f)
        if f >= at:
            task.cancel()

    task = TaskState(cb, min_interval=0.0)
    return task, seen


def counts_of(db: Database) -> tuple[int, int, int]:
    with db.session() as s:
        return (s.scalar(select(func.count()).select_from(ExchangePackage)),
                s.scalar(select(func.count()).select_from(ImportBatch)),
                s.scalar(select(func.count()).select_from(AuditEntry)))


def test_checkout_reports_progress_up_to_the_end(demo_db: Database, tmp_path: Path) -> None:
    task, seen = cancelling_task(2.0)  # never cancels
    a = admin_of(demo_db)
    with demo_db.work(a) as s:
        exchange.checkout(s, a, out=tmp_path / "c.xlsx", area_code=COMMUNITY, task=task)
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)
    assert len([f for f in seen if 0.0 < f < 1.0]) >= 3  # reported along the way, not only at the ends


@pytest.mark.parametrize("at", [0.0, 0.5, 0.99])
def test_cancelled_checkout_leaves_no_file_and_no_record(demo_db: Database, tmp_path: Path, at: float) -> None:
    from gridman.core.tasks import Cancelled

    before = counts_of(demo_db)
    task, seen = cancelling_task(at)
    folder = tmp_path / "out"
    folder.mkdir()
    a = admin_of(demo_db)
    with pytest.raises(Cancelled), demo_db.work(a) as s:
        exchange.checkout(s, a, out=folder / "c.xlsx", area_code=COMMUNITY, task=task)
    assert seen and max(seen) >= at
    assert list(folder.iterdir()) == []  # neither the workbook nor its .part
    assert counts_of(demo_db) == before


# 0.99: the last report before the commit (100 % comes only after it, issue 16)
@pytest.mark.parametrize(("dry_run", "at"), [(True, 0.0), (True, 0.6), (False, 0.3), (False, 0.75), (False, 0.99)])
def test_cancelled_checkin_writes_nothing(demo_db: Database, tmp_path: Path, dry_run: bool, at: float) -> None:
    """Cancelled while reading, planning or writing (or at the very end): the database is as it was,
    and the same workbook checks in afterwards."""
    from gridman.core.tasks import Cancelled

    if demo_db.dialect != "sqlite" and at not in (0.75,):
        pytest.skip("the cancel points are backend-independent; the writing one runs on both")
    rows = pick_rows(demo_db)
    book = tmp_path / "c.xlsx"
    checkout(demo_db, book, area_code=COMMUNITY)
    edit_workbook(book, rows, tmp_path / "back.xlsx")
    before, n_before = snapshot(demo_db), counts_of(demo_db)
    task, seen = cancelling_task(at)
    a = admin_of(demo_db)
    with pytest.raises(Cancelled), demo_db.work(a) as s:
        exchange.checkin(s, a, path=tmp_path / "back.xlsx", dry_run=dry_run, task=task)
    assert max(seen) >= at
    assert snapshot(demo_db) == before and counts_of(demo_db) == n_before
    res = checkin(demo_db, tmp_path / "back.xlsx")
    assert res.batch_id and sum(v.get("inserted", 0) for v in res.counts.values()) == 3


@pytest.mark.parametrize("at", [0.2, 0.6])
def test_cancelled_open_leaves_the_local_database_empty(demo_db: Database, tmp_path: Path, at: float) -> None:
    from gridman.core.tasks import Cancelled

    book = tmp_path / "c.xlsx"
    checkout(demo_db, book, area_code=COMMUNITY)
    local = open_database(tmp_path / "local.sqlite")
    try:
        la = admin_of(local)
        with local.session() as s:
            n_areas = s.scalar(select(func.count()).select_from(Area))
        task, seen = cancelling_task(at)
        with pytest.raises(Cancelled), local.work(la) as s:
            exchange.open_package(s, la, path=book, task=task)
        assert max(seen) >= at
        with local.session() as s:
            assert s.scalar(select(func.count()).select_from(Resident)) == 0
            assert s.scalar(select(func.count()).select_from(Household)) == 0
            assert s.scalar(select(func.count()).select_from(ExchangePackage)) == 0
            assert s.scalar(select(func.count()).select_from(Area)) == n_areas
        with local.work(la) as s:  # and it opens normally afterwards (not "local changes")
            opened = exchange.open_package(s, la, path=book)
        assert not opened.refreshed and opened.counts["residents"] > 0
    finally:
        local.dispose()


# --- scope of the package list ---------------------------------------------------------------------


def test_cli_exchange_list_shows_only_the_users_scope(sqlite_demo: Database, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """`gridman --as USER exchange list --json` lists the packages whose area lies in the user's
    scope (scope.covers), for every demo account; community staff see their community's packages."""
    from gridman.cli import main
    from gridman.core.services.auth import actor_by_username

    checkout(sqlite_demo, tmp_path / "c.xlsx", area_code=COMMUNITY)
    checkout(sqlite_demo, tmp_path / "o.xlsx", area_code=OTHER_COMMUNITY)
    checkout(sqlite_demo, tmp_path / "g.xlsx", grid_codes=[G1])
    checkout(sqlite_demo, tmp_path / "s.xlsx", area_code=OTHER_COMMUNITY[:9])
    with sqlite_demo.session() as s:
        areas = {code: s.scalar(select(Area).where(Area.code == code))
                 for code in (COMMUNITY, OTHER_COMMUNITY, G1, OTHER_COMMUNITY[:9])}
        actors = {u: actor_by_username(s, u) for u in ("admin", "clerk", "street", "community", "warden")}
        expected = {u: sorted(c for c, area in areas.items() if a.covers(area)) for u, a in actors.items()}
    dbp = str(sqlite_demo.sqlite_path)
    sqlite_demo.dispose()
    got = {}
    for user in actors:
        rc = main([*signed_in(dbp, user), "exchange", "list", "--json"])
        out = json.loads(capsys.readouterr().out)
        assert rc == 0
        got[user] = sorted(p["area_code"] for p in out["packages"])
    assert got == expected
    assert got["community"] == sorted([COMMUNITY, G1])  # not the other street's packages
    assert got["admin"] == got["clerk"] == sorted(areas)
    assert got["warden"] == [G1]

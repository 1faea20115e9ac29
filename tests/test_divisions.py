"""An office starts from nothing: GB/T 2260 parents, the bundled table, ``gridman areas add``,
and a DataV-style file of Hefei's districts imported without ``--parent`` (both databases)."""

from __future__ import annotations

import json

import pytest
import shapely
from sqlalchemy import func, select

from gridman.cli import main as cli_main
from gridman.core import divisions
from gridman.core.enums import Role
from gridman.core.models import Area, AuditEntry
from gridman.core.services import areas as area_svc
from gridman.core.services import geometry as G
from gridman.core.services.errors import ValidationError
from gridman.core.services.permissions import system_actor
from tests.helpers import make_user, signed_in

HEFEI = [("340102", "瑶海区"), ("340103", "庐阳区"), ("340104", "蜀山区"), ("340111", "包河区"),
         ("340121", "长丰县"), ("340122", "肥东县"), ("340123", "肥西县"), ("340124", "庐江县"),
         ("340181", "巢湖市")]


def datav_districts() -> dict:
    """Hefei's nine county-level divisions as a DataV GeoJSON (areas.datav.aliyun.com) has them:
    integer adcodes, ``level``, ``parent: {"adcode": 340100}``, ``acroutes``."""
    feats = []
    for i, (code, name) in enumerate(HEFEI):
        x, y = 116.9 + 0.1 * (i % 3), 31.6 + 0.1 * (i // 3)
        feats.append({"type": "Feature",
                      "properties": {"adcode": int(code), "name": name, "level": "district",
                                     "parent": {"adcode": 340100}, "acroutes": [100000, 340000, 340100],
                                     "childrenNum": 0},
                      "geometry": shapely.geometry.mapping(shapely.box(x, y, x + 0.1, y + 0.1))})
    return {"type": "FeatureCollection", "features": feats}


def test_parents_come_from_zeroed_digits_not_prefixes():
    assert divisions.parent_codes("340102") == ["340100", "340000"]
    assert divisions.parent_codes("340100") == ["340000"]
    assert divisions.parent_codes("340000") == []
    assert divisions.parent_codes("340104001001") == ["340104001", "340104", "340100", "340000"]
    assert divisions.parent_codes("340104001001002")[:2] == ["340104001001", "340104001"]
    assert divisions.parent_codes("G-01") == []
    hefei = divisions.lookup("340100")
    assert hefei is not None and (hefei.name, hefei.level) == ("合肥市", "city")
    assert divisions.lookup("340102").level == "district" and divisions.lookup("340000").level == "province"
    assert divisions.lookup("999999") is None
    assert "2025" in divisions.table_source()  # the table says which list and of when


def _import(db, data, **kw):
    with db.session() as s:
        admin = system_actor(s)
    with db.work(admin) as s:
        return G.import_geojson(s, admin, data=data, source="hefei.json", **kw)


def _children_of(db, code: str) -> list[tuple[str, str, str]]:
    with db.session() as s:
        parent = area_svc.by_code(s, code)
        return sorted((a.code, a.name, a.level) for a in s.scalars(select(Area).where(Area.parent_id == parent.id)))


def test_datav_districts_import_into_an_empty_database_with_the_table(db):
    res = _import(db, datav_districts())
    assert res.from_table == ["340100"] and sorted(res.created) == sorted(["340100", *(c for c, _ in HEFEI)])
    assert _children_of(db, "340100") == sorted((c, n, "district") for c, n in HEFEI)
    with db.session() as s:
        city = area_svc.by_code(s, "340100")
        assert (city.name, city.level, city.parent_id) == ("合肥市", "city", None)
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.table_name == "areas",
                                                                            AuditEntry.action == "insert")) == 10


def test_without_the_table_the_city_is_added_by_hand_first(db, tmp_path, capsys):
    with pytest.raises(ValidationError) as e:
        _import(db, datav_districts(), use_table=False)
    assert "340100" in e.value.message and "areas add" in e.value.message
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Area)) == 0  # nothing written
    make_user(db, "admin", Role.ADMIN)  # the office's first account (gridman users add)
    url = db.url if db.dialect != "sqlite" else str(db.sqlite_path)
    db.dispose()
    base = signed_in(url, "admin")
    assert cli_main([*base, "areas", "add", "340100", "合肥市", "--level", "city", "--json"]) == 0
    # a street whose district is not there yet: refused, naming the parent it expects
    assert cli_main([*base, "areas", "add", "340104001", "笔架山街道", "--level", "street", "--json"]) == 2
    assert "340104" in capsys.readouterr().err
    f = tmp_path / "hefei.json"
    f.write_text(json.dumps(datav_districts(), ensure_ascii=False), encoding="utf-8")
    assert cli_main([*base, "areas", "import-geojson", str(f), "--no-table", "--json"]) == 0
    assert cli_main([*base, "areas", "add", "340104001", "笔架山街道", "--level", "street", "--json"]) == 0
    assert _children_of(db, "340100") == sorted((c, n, "district") for c, n in HEFEI)
    assert _children_of(db, "340104") == [("340104001", "笔架山街道", "street")]


def test_in_the_demo_the_existing_city_is_found(demo_db):
    """The demo has 合肥市 340100 (and 蜀山区 340104): no --parent, no table needed, the same city."""
    with demo_db.session() as s:
        city_id = area_svc.by_code(s, "340100").id
        before = s.scalar(select(func.count()).select_from(Area))
    res = _import(demo_db, datav_districts(), use_table=False)
    assert res.from_table == [] and "340100" not in res.created
    assert "340104" in res.updated  # the demo's 蜀山区 gets the file's boundary
    with demo_db.session() as s:
        assert s.scalar(select(func.count()).select_from(Area)) == before + len(res.created)
        assert {a.parent_id for a in s.scalars(select(Area).where(Area.code.in_([c for c, _ in HEFEI])))} == {city_id}

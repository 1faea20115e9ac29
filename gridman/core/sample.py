"""A deterministic synthetic database: ``gridman sample --out PATH --scale demo|street|city``.

Same seed → same data, byte for byte in every table (uuids, timestamps and password salts come
from the seeded generator; "now" is the fixed ``as_of`` date). Rows are produced community by
community and written in batches through SQLAlchemy Core ``executemany`` — never the ORM's
per-object path — so the city scale (3,262 grids, 1,000,000 residents, 1,000,000 incidents)
streams in minutes with bounded memory. Ids are assigned here, so rows can reference each
other without reading anything back.

The geometry is a tiling: a district's rectangle is cut into streets, streets into communities,
communities into grids, row by row (each row split evenly), so siblings never overlap and
leave no gaps. Buildings are points strictly inside their grid.
"""

from __future__ import annotations

import math
import random
import uuid as _uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, cast

import shapely
from shapely.geometry import box
from sqlalchemy import Table, insert, text, update

from gridman.core import idcard, tasks
from gridman.core.db import Database
from gridman.core.models import (
    Area,
    Base,
    Building,
    Facility,
    House,
    Household,
    Incident,
    IncidentParty,
    IncidentStep,
    Organisation,
    OrganisationMember,
    PopulationEvent,
    Premise,
    Resident,
    ResidentTag,
    SentimentReport,
    Setting,
    TimeLimitPolicy,
    User,
    VisitLog,
    WardenAssignment,
)
from gridman.core.services.security import hash_password
from gridman.core.tasks import TaskState

SAMPLE_AS_OF = datetime(2026, 11, 1, 9, 0, 0)
SAMPLE_PASSWORD = "gridman123"



@dataclass(frozen=True)
class Scale:
    name: str
    city: tuple[str, str]
    districts: list[tuple[str, str, list[str]]]  # code, name, street names
    communities_per_street: int | list[int]
    grids: int  # total
    households: int
    residents_per_household: float
    incidents: int
    visits_per_household: float
    wardens_per_grid: float = 1.75
    bbox: tuple[float, float, float, float] = (117.17, 31.80, 117.31, 31.89)


DEMO = Scale(
    name="demo",
    city=("340100", "合肥市"),
    districts=[("340104", "蜀山区", ["笔架山街道", "琥珀街道"])],
    communities_per_street=3,
    grids=40,
    households=3000,
    residents_per_household=2.67,
    incidents=1500,
    visits_per_household=1.5,
)

STREET = Scale(
    name="street",
    city=("340100", "合肥市"),
    districts=[("340104", "蜀山区", ["笔架山街道"])],
    communities_per_street=25,
    grids=250,
    households=37500,
    residents_per_household=2.67,
    incidents=40000,
    visits_per_household=0.5,
)

_HEFEI_DISTRICTS = [
    ("340102", "瑶海区", 6), ("340103", "庐阳区", 6), ("340104", "蜀山区", 7), ("340111", "包河区", 7),
    ("340121", "长丰县", 3), ("340122", "肥东县", 3), ("340123", "肥西县", 3), ("340171", "高新区", 1),
    ("340172", "经开区", 2),
]
_STREET_NAMES = [
    "笔架山", "琥珀", "三里庵", "稻香村", "五里墩", "西园", "荷叶地", "南七", "井岗", "小庙", "望湖", "芜湖路",
    "常青", "方庙", "烟墩", "滨湖", "包公", "义城", "大兴", "淝河", "双岗", "杏林", "亳州路", "四里河",
    "逍遥津", "杏花村", "海棠", "林店", "双凤", "岗集", "店埠", "撮镇", "上派", "桃花", "紫蓬", "天乐",
    "莲花", "海恒",
]
CITY = Scale(
    name="city",
    city=("340100", "合肥市"),
    districts=[],  # filled below: 38 streets over 9 districts
    communities_per_street=[],  # 362 communities over 38 streets
    grids=3262,
    households=380000,
    residents_per_household=2.632,
    incidents=1_000_000,
    visits_per_household=0.5,
    bbox=(116.95, 31.65, 117.55, 32.05),
)


def _city_scale() -> Scale:
    districts = []
    i = 0
    for code, name, n in _HEFEI_DISTRICTS:
        districts.append((code, name, [s + "街道" for s in _STREET_NAMES[i : i + n]]))
        i += n
    per_street = [362 // 38 + (1 if k < 362 % 38 else 0) for k in range(38)]
    return Scale(**{**CITY.__dict__, "districts": districts, "communities_per_street": per_street})


SCALES: dict[str, Callable[[], Scale]] = {"demo": lambda: DEMO, "street": lambda: STREET, "city": _city_scale}

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严武戴孔汤"
)
MALE_CHARS = "伟刚勇毅俊峰强军平保东文辉力明永健世广志义兴良海山仁波宁贵福生龙元全国胜学祥才发武新利清飞彬富顺信子杰涛昌成康星光天达安岩中茂进林有坚和彪博诚先敬震振壮会思群豪心邦承乐绍功松善厚庆磊民友裕河哲江超浩亮政谦亨奇固之轮翰朗伯宏言若鸣朋斌梁栋维启克伦翔旭鹏泽晨辰士以建家致树炎德行时泰盛雄琛钧冠策腾楠榕风航弘"
FEMALE_CHARS = "秀娟英华慧巧美娜静淑惠珠翠雅芝玉萍红娥玲芬芳燕彩春菊兰凤洁梅琳素云莲真环雪荣爱妹霞香月莺媛艳瑞凡佳嘉琼勤珍贞莉桂娣叶璧璐娅琦晶妍茜秋珊莎锦黛青倩婷姣婉娴瑾颖露瑶怡婵雁蓓纨仪荷丹蓉眉君琴蕊薇菁梦岚苑婕馨瑗琰韵融园艺咏卿聪澜纯毓悦昭冰爽琬茗羽希宁欣飘育滢馥筠柔竹霭凝晓欢霄枫芸菲寒伊亚宜可姬舒影荔枝思丽"
ETHNICITIES = ["汉族"] * 97 + ["回族", "满族", "蒙古族"]
OTHER_ORIGINS = ["340121", "340122", "340123", "341502", "342401", "340823", "341203", "410102", "320102",
                 "360102", "420102", "341302", "341122"]
STREET_ROADS = ["长江西路", "黄山路", "金寨路", "潜山路", "望江西路", "肥西路", "合作化路", "怀宁路", "稻香路",
                "琥珀路", "桐城路", "六安路", "宁国路", "徽州大道", "马鞍山路", "繁华大道", "天鹅湖路"]
ESTATES = ["花园", "新村", "小区", "家园", "苑", "公寓", "山庄", "雅居", "名邸", "嘉园"]
ESTATE_WORDS = ["桂花", "玉兰", "翡翠", "锦绣", "阳光", "和平", "幸福", "梅山", "琥珀", "西园", "安居", "湖畔",
                "怡景", "书香", "长江", "绿洲", "新华", "青年", "东方", "金色"]
INCIDENT_TITLES: dict[str, list[str]] = {
    "dispute:family": ["夫妻因子女抚养问题发生争执", "兄弟因赡养老人费用分担产生矛盾", "婆媳矛盾引发家庭纠纷"],
    "dispute:neighbour": ["楼上漏水影响楼下住户", "邻居占用公共楼道堆放杂物", "宠物噪音扰邻", "装修噪音引发邻里纠纷"],
    "dispute:property_mgmt": ["业主与物业因停车费发生纠纷", "物业服务不到位业主拒缴物业费", "电梯长期故障维修推诿"],
    "dispute:labour": ["装修工人被拖欠工资", "商铺员工工资结算纠纷"],
    "dispute:land": ["小区绿地被个人圈占种菜", "宅基地边界争议"],
    "dispute:medical": ["诊所输液后不适引发医疗纠纷"],
    "dispute:traffic": ["小区内电动车与行人碰撞赔偿纠纷", "车辆剐蹭赔偿协商未果"],
    "hazard": ["楼道电动车充电存在火灾隐患", "消防通道被车辆堵塞", "外墙瓷砖松动有坠落风险", "燃气管道老化"],
    "request": ["居民申请加装电梯", "老年人反映缺少活动场所", "申请低保资格复核", "路灯损坏请求维修"],
    "public_order": ["夜间烧烤摊噪音扰民", "小区内发现可疑人员", "群租房人员复杂"],
    "environment": ["垃圾清运不及时", "下水道堵塞污水外溢", "违规饲养家禽", "油烟直排影响居民"],
    "other": ["居民反映快递柜设置不合理", "建议增设非机动车停车棚"],
}
CATEGORY_WEIGHTS = [("dispute", 45), ("hazard", 15), ("request", 18), ("public_order", 7), ("environment", 12),
                    ("other", 3)]
DISPUTE_WEIGHTS = [("neighbour", 35), ("family", 20), ("property_mgmt", 22), ("labour", 8), ("land", 5),
                   ("medical", 3), ("traffic", 7)]


class Rand(random.Random):
    def uuid(self) -> str:
        return str(_uuid.UUID(int=self.getrandbits(128), version=4))

    def weighted(self, pairs: list[tuple[str, int]]) -> str:
        return self.choices([p for p, _ in pairs], weights=[w for _, w in pairs])[0]

    def name(self, sex: str) -> str:
        chars = MALE_CHARS if sex == "M" else FEMALE_CHARS
        given = self.choice(chars) + (self.choice(chars) if self.random() < 0.75 else "")
        return self.choice(SURNAMES) + given

    def phone(self) -> str:
        return self.choice(["13", "15", "18", "17", "19"]) + f"{self.randrange(10**9):09d}"


def _tile(rect: tuple[float, float, float, float], n: int) -> list[tuple[float, float, float, float]]:
    """Cut a rectangle into n rectangles: rows of (nearly) equal cells, each row spanning the width."""
    x0, y0, x1, y1 = rect
    cols = max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    out = []
    left = n
    for r in range(rows):
        k = math.ceil(left / (rows - r))
        ya, yb = y1 - (y1 - y0) * r / rows, y1 - (y1 - y0) * (r + 1) / rows
        for c in range(k):
            out.append((x0 + (x1 - x0) * c / k, yb, x0 + (x1 - x0) * (c + 1) / k, ya))
        left -= k
    return out


@dataclass
class _Ids:
    counters: dict[str, int] = field(default_factory=dict)

    def next(self, table: str) -> int:
        v = self.counters.get(table, 0) + 1
        self.counters[table] = v
        return v


class _Writer:
    """Buffers rows per table and writes them with executemany in batches."""

    def __init__(self, conn: Any, batch: int = 20_000) -> None:
        self.conn = conn
        self.batch = batch
        self.buffers: dict[Table, list[dict[str, Any]]] = {}
        self.written = 0
        self.order: list[Table] = [cast(Table, m.__table__) for m in (
            Area, User, WardenAssignment, Building, House, Household, Resident, ResidentTag, Premise, Facility,
            Organisation, OrganisationMember, Incident, IncidentParty, IncidentStep, VisitLog, SentimentReport,
            PopulationEvent,
        )]

    def add(self, model: type[Base], row: dict[str, Any]) -> None:
        t = cast(Table, model.__table__)
        buf = self.buffers.setdefault(t, [])
        buf.append(row)
        if len(buf) >= self.batch:
            self.flush()

    def flush(self) -> None:
        # parents before children (foreign keys are checked per statement)
        for t in self.order:
            rows = self.buffers.get(t)
            if rows:
                self.conn.execute(insert(t), rows)
                self.written += len(rows)
                rows.clear()


@dataclass
class SampleResult:
    scale: str
    seed: int
    counts: dict[str, int]
    rows_written: int


def generate(database: Database, *, scale: str = "demo", seed: int = 20081, as_of: datetime = SAMPLE_AS_OF,
             task: TaskState | None = None) -> SampleResult:
    """Fill an empty (freshly migrated) database with a synthetic area. See module docstring.

    Progress is reported per community on ``task``; a cancel stops at the next community and the
    one transaction rolls back, so nothing is written."""
    sc = SCALES[scale]()
    rng = Rand(seed)
    task = tasks.ensure(task)
    with database.engine.begin() as conn:
        if conn.execute(text("SELECT COUNT(*) FROM areas")).scalar():
            raise ValueError("the target database is not empty")
        tags = {code: tid for tid, code in conn.execute(text("SELECT id, code FROM tags")).all()}
        gen = _Generator(sc, rng, as_of, _Writer(conn), tags)
        gen.run(task)
        gen.w.flush()
        _make_reference_rows_deterministic(conn, rng, as_of)
        if conn.dialect.name == "postgresql":
            for t in Base.metadata.sorted_tables:
                if "id" in t.c and t.c.id.autoincrement and t.name not in ("settings",):
                    conn.execute(text(
                        f"SELECT setval(pg_get_serial_sequence('{t.name}', 'id'), "
                        f"GREATEST((SELECT COALESCE(MAX(id), 0) FROM {t.name}), 1))"
                    ))
        counts = {t.name: conn.execute(text(f"SELECT COUNT(*) FROM {t.name}")).scalar_one()
                  for t in Base.metadata.sorted_tables}
        task.check()
    task.progress(1.0, "完成 / done")
    return SampleResult(scale, seed, counts, gen.w.written)


def _make_reference_rows_deterministic(conn: Any, rng: Rand, as_of: datetime) -> None:
    """Rows the migrations made with random uuids/now timestamps get seeded values instead."""
    conn.execute(update(User).where(User.username == "system").values(
        uuid=rng.uuid(), created_at=as_of, updated_at=as_of))
    conn.execute(update(TimeLimitPolicy).values(updated_at=as_of))
    conn.execute(update(Setting).where(Setting.key == "database_id").values(value=rng.uuid(), updated_at=as_of))


class _Generator:
    def __init__(self, sc: Scale, rng: Rand, as_of: datetime, writer: _Writer, tags: dict[str, int]) -> None:
        self.sc, self.rng, self.as_of, self.w, self.tags = sc, rng, as_of, writer, tags
        self.ids = _Ids()
        self.today = as_of.date()
        self.pw_hash = hash_password(SAMPLE_PASSWORD, salt=rng.randbytes(16))
        self.id_seq: dict[tuple[str, date, str], int] = {}
        self.grid_wardens: dict[int, list[int]] = {}
        self.supervisors: dict[int, int] = {}  # street id -> user id
        self.staff: dict[int, int] = {}  # community id -> user id

    # -- helpers ----------------------------------------------------------------------------
    def sync(self, at: datetime | None = None) -> dict[str, Any]:
        at = at or self.as_of
        return {"uuid": self.rng.uuid(), "version": 1, "created_at": at, "updated_at": at}

    def area(self, code: str, name: str, level: str, parent: dict[str, Any] | None,
             rect: tuple[float, float, float, float] | None) -> dict[str, Any]:
        aid = self.ids.next("areas")
        row = {
            "id": aid, "code": code, "name": name, "level": level, "parent_id": parent["id"] if parent else None,
            "path": (parent["path"] if parent else "/") + f"{aid}/", "depth": (parent["depth"] + 1) if parent else 0,
            "boundary": shapely.to_wkb(box(*rect)) if rect else None,
            "center_lon": round((rect[0] + rect[2]) / 2, 6) if rect else None,
            "center_lat": round((rect[1] + rect[3]) / 2, 6) if rect else None,
            "household_limit": None, "note": None, **self.sync(),
        }
        self.w.add(Area, row)
        return row

    def citizen_id(self, area_code: str, born: date, sex: str) -> tuple[str, date]:
        """A unique valid ID and the birth date it encodes (the day before when all 500 sequence
        numbers of that area, day and sex are taken — the caller stores the date returned)."""
        key = (area_code, born, sex)
        n = self.id_seq.get(key, self.rng.randrange(0, 40))
        self.id_seq[key] = n + 1
        if n >= 500:
            return self.citizen_id(area_code, born - timedelta(days=1), sex)
        return idcard.make(area_code, born, n, sex), born

    def birth(self, age_lo: int, age_hi: int) -> date:
        age_days = self.rng.randint(age_lo * 365, age_hi * 365 + 364)
        return self.today - timedelta(days=age_days)

    def user(self, username: str, display: str, role: str, area_id: int | None) -> int:
        uid = self.ids.next("users") + 1  # id 1 is the built-in system account (migration 0002)
        self.w.add(User, {"id": uid, "username": username, "display_name": display, "password_hash": self.pw_hash,
                          "role": role, "area_id": area_id, "phone": self.rng.phone(), "active": True,
                          "is_system": False, "last_login_at": None, **self.sync()})
        return uid

    # -- the run ----------------------------------------------------------------------------
    def run(self, task: TaskState) -> None:
        sc, rng = self.sc, self.rng
        x0, y0, x1, y1 = sc.bbox
        city = self.area(sc.city[0], sc.city[1], "city", None, None)
        self.user("admin", "管理员", "admin", None)
        self.user("clerk", "内勤小周", "clerk", None)
        streets_total = sum(len(d[2]) for d in sc.districts)
        per_street = (sc.communities_per_street if isinstance(sc.communities_per_street, list)
                      else [sc.communities_per_street] * streets_total)
        n_comm = sum(per_street)
        grids_per_comm = [sc.grids // n_comm + (1 if k < sc.grids % n_comm else 0) for k in range(n_comm)]
        hh_per_grid = sc.households / sc.grids
        district_rects = _tile(sc.bbox, len(sc.districts))
        comm_index = 0
        street_index = 0
        done_grids = 0
        for (dcode, dname, street_names), drect in zip(sc.districts, district_rects, strict=True):
            district = self.area(dcode, dname, "district", city, drect)
            for s_no, (sname, srect) in enumerate(zip(street_names, _tile(drect, len(street_names)), strict=True), 1):
                street = self.area(f"{dcode}{s_no:03d}", sname, "street", district, srect)
                sup = self.user(
                    "street" if street_index == 0 else f"jd{street['code']}", f"{rng.name('M')}（{sname}）",
                    "street_supervisor", street["id"])
                self.supervisors[street["id"]] = sup
                n_here = per_street[street_index]
                street_index += 1
                for c_no, crect in enumerate(_tile(srect, n_here), 1):
                    word = rng.choice(ESTATE_WORDS)
                    cname = word + ("社区" if rng.random() < 0.5 or word.endswith("园") else "园社区")
                    comm = self.area(f"{street['code']}{c_no:03d}", f"{sname[:-2]}{cname}", "community", street, crect)
                    staff = self.user("community" if comm_index == 0 else f"sq{comm['code']}",
                                      rng.name(rng.choice("MF")), "community_staff", comm["id"])
                    self.staff[comm["id"]] = staff
                    self.community(comm, street, crect, grids_per_comm[comm_index], hh_per_grid)
                    comm_index += 1
                    done_grids += grids_per_comm[comm_index - 1]
                    task.step(done_grids, sc.grids, f"{comm['name']}：{done_grids}/{sc.grids} 个网格")

    def community(self, comm: dict[str, Any], street: dict[str, Any], rect: tuple[float, float, float, float],
                  n_grids: int, hh_per_grid: float) -> None:
        rng, sc = self.rng, self.sc
        grid_rows = []
        for g_no, grect in enumerate(_tile(rect, n_grids), 1):
            grid = self.area(f"{comm['code']}{g_no:03d}", f"第{g_no}网格", "grid", comm, grect)
            grid_rows.append((grid, grect))
        # wardens: one per grid, a second for ~75% of grids (≈1.75 per grid)
        for grid, _ in grid_rows:
            n = 1 + (1 if rng.random() < sc.wardens_per_grid - 1 else 0)
            wardens: list[int] = []
            for k in range(n):
                uname = f"wg{grid['code']}{k}" if self.grid_wardens or wardens else "warden"
                sex = rng.choice("MF")
                uid = self.user(uname, rng.name(sex), "warden", None)
                start = self.today - timedelta(days=rng.randint(60, 2000))
                self.w.add(WardenAssignment, {"id": self.ids.next("warden_assignments"), "user_id": uid,
                                              "grid_id": grid["id"], "start_date": start, "end_date": None,
                                              "is_primary": k == 0, **self.sync()})
                wardens.append(uid)
            self.grid_wardens[grid["id"]] = wardens
        # organisations of the community
        org_ids = self.organisations(comm, grid_rows)
        # facilities
        fx0, fy0, fx1, fy1 = rect
        for kind, name, m2 in (("office", "社区办公用房", rng.randint(200, 500)),
                               ("activity_room", "居民活动室", rng.randint(150, 600)),
                               ("service_center", "党群服务中心", rng.randint(300, 1200)),
                               ("health_station", "社区卫生服务站", rng.randint(100, 400)),
                               ("police_room", "社区警务室", rng.randint(20, 60))):
            if kind == "police_room" and rng.random() < 0.4:
                continue
            self.w.add(Facility, {"id": self.ids.next("facilities"), "area_id": comm["id"],
                                  "name": comm["name"] + name, "kind": kind, "floor_area_m2": float(m2),
                                  "address": f"{rng.choice(STREET_ROADS)}{rng.randint(1, 400)}号",
                                  "lon": round(rng.uniform(fx0, fx1), 6), "lat": round(rng.uniform(fy0, fy1), 6),
                                  "opening_hours": "8:30-17:30", **self.sync()})
        for grid, grect in grid_rows:
            n_hh = max(1, round(rng.gauss(hh_per_grid, hh_per_grid * 0.12)))
            self.grid(grid, comm, street, grect, n_hh, org_ids)

    def organisations(self, comm: dict[str, Any], grid_rows: list) -> list[int]:
        rng = self.rng
        cname = comm["name"]
        specs: list[tuple[str, str, str | None, str | None]] = [
            (f"{cname}党委", "party", None, None),
            (f"{cname}居民委员会", "residents_committee", None, None),
            (f"{cname}工作站", "workstation", None, None),
            (f"{cname}居民议事会", "residents_council", None, None),
            (f"{cname}志愿服务队", "volunteer_team", None, None),
        ]
        for _ in range(rng.randint(1, 3)):
            specs.append((f"{rng.choice(ESTATE_WORDS)}物业服务有限公司", "property_company", None, None))
        specs.append((f"{rng.choice(ESTATE_WORDS)}{rng.choice(ESTATES)}业主委员会", "owners_committee", None, None))
        for field_, names in (("culture_sport", ["广场舞队", "太极拳协会", "书画社"]),
                              ("charity", ["爱心互助会", "慈善超市"]),
                              ("volunteer", ["邻里守望队", "银发志愿者协会"]),
                              ("social_work", ["社工服务中心"])):
            if rng.random() < 0.7:
                specs.append((cname + rng.choice(names), "social_org",
                              "registered" if rng.random() < 0.4 else "filed", field_))
        for _ in range(rng.randint(1, 4)):
            specs.append((f"合肥{rng.choice(ESTATE_WORDS)}{rng.choice(['商贸', '科技', '餐饮', '物流'])}有限公司",
                          "employer", None, None))
        ids = []
        for name, kind, reg, fld in specs:
            grid = rng.choice(grid_rows)[0] if kind in ("employer", "owners_committee", "property_company") else comm
            oid = self.ids.next("organisations")
            self.w.add(Organisation, {"id": oid, "area_id": grid["id"], "name": name, "kind": kind, "registration": reg,
                                      "field": fld, "credit_code": None, "address": None,
                                      "contact_name": rng.name(rng.choice("MF")), "contact_phone": rng.phone(),
                                      "contact_resident_id": None,
                                      "founded_on": self.today - timedelta(days=rng.randint(200, 6000)),
                                      "member_count": rng.randint(5, 80), "note": None, **self.sync()})
            ids.append(oid)
        return ids

    def grid(self, grid: dict[str, Any], comm: dict[str, Any], street: dict[str, Any],
             rect: tuple[float, float, float, float], n_hh: int, org_ids: list[int]) -> None:
        rng, sc = self.rng, self.sc
        gx0, gy0, gx1, gy1 = rect
        mx, my = (gx1 - gx0) * 0.05, (gy1 - gy0) * 0.05
        estate = rng.choice(ESTATE_WORDS) + rng.choice(ESTATES)
        road = rng.choice(STREET_ROADS)
        n_bld = max(1, round(n_hh / rng.uniform(8, 14)))
        buildings = []
        for b in range(1, n_bld + 1):
            bid = self.ids.next("buildings")
            floors = rng.choice([5, 6, 6, 7, 11, 18, 24, 32])
            self.w.add(Building, {"id": bid, "grid_id": grid["id"], "code": f"{grid['code']}B{b:03d}",
                                  "name": f"{estate}{b}栋", "address": f"{road}{rng.randint(1, 600)}号{estate}{b}栋",
                                  "floors": floors, "units": rng.randint(1, 4),
                                  "lon": round(rng.uniform(gx0 + mx, gx1 - mx), 7),
                                  "lat": round(rng.uniform(gy0 + my, gy1 - my), 7),
                                  "built_year": rng.randint(1985, 2022), "leader_resident_id": None, "note": None,
                                  **self.sync()})
            buildings.append((bid, floors, f"{road}{estate}{b}栋"))
        first_res = self.ids.counters.get("residents", 0) + 1
        self.grid_residents: list[tuple[int, str]] = []
        hh_ids = []
        for h in range(1, n_hh + 1):
            bid, floors, baddr = rng.choice(buildings)
            floor = rng.randint(1, floors)
            room = f"{floor}{rng.randint(1, 4):02d}"
            use = rng.choices(["owner", "rented", "vacant", "commercial"], [70, 22, 6, 2])[0]
            house_id = self.ids.next("houses")
            self.w.add(House, {"id": house_id, "building_id": bid, "unit": str(rng.randint(1, 3)), "floor": floor,
                               "room_no": room, "use": use, "area_m2": round(rng.uniform(45, 160), 1),
                               "owner_name": None, "owner_phone": None, **self.sync()})
            hid = self.ids.next("households")
            hh_ids.append(hid)
            addr = f"{baddr}{room}室"
            self.w.add(Household, {"id": hid, "household_no": f"{grid['code']}{h:04d}", "grid_id": grid["id"],
                                   "building_id": bid, "house_id": house_id, "address": addr,
                                   "kind": "family", "phone": None, "note": None, **self.sync()})
            self.household(hid, grid, addr, use == "rented")
        last_res = self.ids.counters.get("residents", 0)
        # premises
        for _ in range(max(1, n_hh // 40)):
            kind = rng.choices(["shop", "restaurant", "nine_small", "rental_housing", "clinic", "school", "hotel",
                                "factory"], [30, 20, 20, 10, 6, 4, 5, 5])[0]
            bid, _, baddr = rng.choice(buildings)
            self.w.add(Premise, {"id": self.ids.next("premises"), "grid_id": grid["id"], "building_id": bid,
                                 "name": f"{rng.choice(SURNAMES)}记{ {'shop': '便利店', 'restaurant': '餐馆', 'nine_small': '理发店', 'rental_housing': '出租屋', 'clinic': '诊所', 'school': '托管班', 'hotel': '宾馆', 'factory': '加工坊'}[kind] }",
                                 "kind": kind, "address": baddr,
                                 "lon": round(rng.uniform(gx0 + mx, gx1 - mx), 7),
                                 "lat": round(rng.uniform(gy0 + my, gy1 - my), 7),
                                 "contact_name": rng.name(rng.choice("MF")), "contact_phone": rng.phone(),
                                 "license_no": None, "last_inspected": self.today - timedelta(days=rng.randint(1, 400)),
                                 "note": None, **self.sync()})
        # organisation members from this grid
        if last_res >= first_res:
            for oid in rng.sample(org_ids, k=min(len(org_ids), 2)):
                for rid in rng.sample(range(first_res, last_res + 1), k=min(3, last_res - first_res + 1)):
                    self.w.add(OrganisationMember, {"id": self.ids.next("organisation_members"),
                                                    "organisation_id": oid, "resident_id": rid,
                                                    "role": rng.choice(["成员", "志愿者", "负责人"]),
                                                    "joined_on": self.today - timedelta(days=rng.randint(10, 3000)),
                                                    "service_hours": rng.randint(0, 300), **self.sync()})
        wardens = self.grid_wardens[grid["id"]]
        # visit logs
        n_vis = round(n_hh * sc.visits_per_household)
        for _ in range(n_vis):
            at = self.as_of - timedelta(minutes=rng.randint(0, 365 * 24 * 60))
            hid = rng.choice(hh_ids)
            kind = rng.choices(["routine", "care", "watch", "verify", "follow_up"], [60, 20, 5, 10, 5])[0]
            self.w.add(VisitLog, {"id": self.ids.next("visit_logs"), "grid_id": grid["id"], "household_id": hid,
                                  "resident_id": None, "visitor_id": rng.choice(wardens), "visited_at": at,
                                  "kind": kind, "findings": rng.choice(["情况正常", "家中老人身体欠佳，已告知社区医生",
                                                                        "反映楼道灯不亮", "新增租户一名，已登记",
                                                                        "住户外出务工，房屋空置"]),
                                  "follow_up": None, "incident_id": None, **self.sync(at)})
        # sentiment reports and population events
        for _ in range(max(1, n_hh // 60)):
            at = self.as_of - timedelta(minutes=rng.randint(0, 365 * 24 * 60))
            self.w.add(SentimentReport, {"id": self.ids.next("sentiment_reports"), "grid_id": grid["id"],
                                         "reporter_id": rng.choice(wardens), "reported_at": at,
                                         "topic": rng.choice(["居民关注老旧小区改造进度", "对垃圾分类新规意见较多",
                                                              "希望增加社区食堂", "停车难问题突出"]),
                                         "content": None, "mood": rng.choice(["positive", "neutral", "negative"]),
                                         "status": rng.choice(["open", "forwarded", "done"]), **self.sync(at)})
        if last_res >= first_res:
            for _ in range(max(1, n_hh // 50)):
                at = self.as_of - timedelta(minutes=rng.randint(0, 365 * 24 * 60))
                self.w.add(PopulationEvent, {"id": self.ids.next("population_events"),
                                             "resident_id": rng.randint(first_res, last_res), "household_id": None,
                                             "grid_id": grid["id"],
                                             "kind": rng.choices(["move_in", "move_out", "birth", "death", "transfer"],
                                                                 [40, 30, 10, 8, 12])[0],
                                             "occurred_at": at, "from_place": None, "to_place": None,
                                             "recorded_by": rng.choice(wardens), "note": None, **self.sync(at)})
        # incidents
        n_inc = self._quota("incidents", self.sc.incidents * n_hh / self.sc.households)
        for _ in range(n_inc):
            self.incident(grid, comm, street, rect, buildings, first_res, last_res)

    def _quota(self, key: str, expected: float) -> int:
        """Integer counts whose running total tracks the expected total (no drift at scale)."""
        acc = self.__dict__.setdefault("_acc", {})
        acc[key] = acc.get(key, 0.0) + expected
        n = int(acc[key])
        acc[key] -= n
        return n

    def household(self, hid: int, grid: dict[str, Any], addr: str, rented: bool) -> None:
        rng, sc = self.rng, self.sc
        size = rng.choices([1, 2, 3, 4, 5], [14, 30, 33, 16, 7])[0]
        if sc.residents_per_household < 2.6:
            size = max(1, size - (1 if rng.random() < 0.1 else 0))
        ptype = "registered"
        if rented:
            ptype = rng.choice(["floating", "floating", "separated"])
        elif rng.random() < 0.08:
            ptype = "separated"
        origin = "340104" if ptype == "registered" else rng.choice(OTHER_ORIGINS)
        head_sex = rng.choice("MF")
        head_age = rng.randint(24, 90) if size > 1 else rng.randint(20, 95)
        members: list[tuple[str, str, date]] = [("head", head_sex, self.birth(head_age, head_age))]
        if size >= 2:
            sp_age = max(20, head_age + rng.randint(-4, 4))
            members.append(("spouse", "F" if head_sex == "M" else "M", self.birth(sp_age, sp_age)))
        for _ in range(size - len(members)):
            if head_age > 60 and rng.random() < 0.4:
                members.append(("grandchild", rng.choice("MF"), self.birth(0, 17)))
            elif head_age < 45 and rng.random() < 0.2:
                pa = min(95, head_age + rng.randint(22, 32))
                members.append(("parent", rng.choice("MF"), self.birth(pa, pa)))
            else:
                ca = max(0, head_age - rng.randint(22, 36))
                members.append(("child", rng.choice("MF"), self.birth(ca, ca)))
        surname_pool = None
        for rel, sex, born in members:
            rid = self.ids.next("residents")
            name = rng.name(sex)
            if rel in ("child", "grandchild") and surname_pool:
                name = surname_pool + name[1:]
            if rel == "head":
                surname_pool = name[0]
            self.grid_residents.append((rid, name))
            age = (self.today - born).days // 365
            has_id = age >= 16 or rng.random() < 0.85
            cid = None
            if has_id:
                cid, born = self.citizen_id(origin if rel != "grandchild" else "340104", born, sex)
            self.w.add(Resident, {
                "id": rid, "household_id": hid, "grid_id": grid["id"], "name": name, "sex": sex,
                "ethnicity": rng.choice(ETHNICITIES), "citizen_id": cid, "birth_date": born,
                "phone": rng.phone() if age >= 16 else None,
                "registered_address": "安徽省合肥市蜀山区" if origin == "340104" else "外地户籍",
                "current_address": addr, "relation_to_head": rel, "population_type": ptype,
                "residence_permit_no": (f"3401{rng.randrange(10**10):010d}" if ptype == "floating" and age >= 16
                                        and rng.random() < 0.8 else None),
                "residence_permit_expiry": (self.today + timedelta(days=rng.randint(-60, 700))
                                            if ptype == "floating" else None),
                "education": rng.choice(["小学", "初中", "高中", "大专", "本科", "研究生", None]) if age >= 16 else None,
                "marital_status": ("已婚" if rel in ("head", "spouse") and size > 1 else None),
                "political_status": rng.choices(["群众", "中共党员", "共青团员"], [80, 12, 8])[0],
                "employer": None, "status": "active", "note": None, **self.sync(),
            })
            for code in self.tags_for(age, sex, size):
                self.w.add(ResidentTag, {"id": self.ids.next("resident_tags"), "resident_id": rid,
                                         "tag_id": self.tags[code], "since": self.today - timedelta(days=rng.randint(1, 2000)),
                                         "note": None, **self.sync()})

    def tags_for(self, age: int, sex: str, size: int) -> list[str]:
        rng = self.rng
        out = []
        r = rng.random
        if r() < 0.03:
            out.append("low_income")
        if r() < 0.02:
            out.append("disabled")
        if age >= 70 and size == 1:
            out.append("elderly_alone")
        if age >= 80:
            out.append("card_shouxing")
        if age < 14 and r() < 0.2:
            out.append("card_lingtong")
        if sex == "F" and 18 <= age < 60 and r() < 0.05:
            out.append("card_jinguo")
        if age < 16 and r() < 0.02:
            out.append("left_behind_child")
        if r() < 0.01:
            out.append("card_tequn")
        if r() < 0.01:
            out.append("card_lianxin")
        if 18 <= age <= 70:
            if r() < 0.002:
                out.append("released_prisoner")
            if r() < 0.001:
                out.append("community_correction")
            if r() < 0.0015:
                out.append("drug_user")
        if r() < 0.003:
            out.append("mental_disorder")
        if r() < 0.005 and age >= 18:
            out.append("veteran")
        return out

    def incident(self, grid: dict[str, Any], comm: dict[str, Any], street: dict[str, Any],
                 rect: tuple[float, float, float, float], buildings: list, first_res: int, last_res: int) -> None:
        rng = self.rng
        iid = self.ids.next("incidents")
        cat = rng.weighted(CATEGORY_WEIGHTS)
        sub = rng.weighted(DISPUTE_WEIGHTS) if cat == "dispute" else None
        title = rng.choice(INCIDENT_TITLES[f"dispute:{sub}" if sub else cat])
        reported = self.as_of - timedelta(minutes=rng.randint(0, 365 * 24 * 60))
        age_days = (self.as_of - reported).total_seconds() / 86400
        bid, _, baddr = rng.choice(buildings)
        limits = {"grid": 3, "community": 7, "street": 15}
        wardens = self.grid_wardens[grid["id"]]
        reporter = rng.choice(wardens)
        actors = {"grid": reporter, "community": self.staff[comm["id"]], "street": self.supervisors[street["id"]]}
        steps: list[dict[str, Any]] = []
        t = reported
        level, status = "grid", "reported"

        def step(action: str, to_level: str, to_status: str, dt_hours: float, note: str | None = None,
                 target: str | None = None) -> None:
            nonlocal t, level, status
            t = t + timedelta(hours=dt_hours)
            steps.append({"action": action, "from_level": level if steps else None, "to_level": to_level,
                          "from_status": status if steps else None, "to_status": to_status, "at": t, "note": note,
                          "target": target, "actor": actors[to_level] if action != "report" else reporter})
            level, status = to_level, to_status

        step("report", "grid", "reported", 0, "网格员巡查发现" if rng.random() < 0.6 else "居民来电反映")
        level_entered = t
        # how far has this case gone? older cases are further along
        final_level = rng.choices(["grid", "community", "street"], [70, 22, 8])[0]
        spent = 0.0
        outcome = self._outcome(age_days)
        if outcome != "reported":
            step("accept", "grid", "accepted", rng.uniform(0.5, 12))
            spent += 0.5
        for lv in ("community", "street"):
            if outcome in ("reported", "accepted"):
                break
            if ["grid", "community", "street"].index(final_level) >= ["grid", "community", "street"].index(lv):
                hours = rng.uniform(12, limits[level] * 24 * 1.1)
                if (t + timedelta(hours=hours)) > self.as_of:
                    break
                overdue = hours > limits[level] * 24
                step("escalate", lv, "reported", hours, "超期未办结，自动上报" if overdue else "网格无法调处，提请上级")
                level_entered = t
                step("accept", lv, "accepted", rng.uniform(1, 24))
        if outcome in ("in_progress", "resolved", "closed", "failed", "referred"):
            step("handle", level, "in_progress", rng.uniform(2, 48), rng.choice(["约谈双方当事人", "现场查看", "组织调解会"]))
        if outcome in ("resolved", "closed"):
            step("resolve", level, "resolved", rng.uniform(4, limits[level] * 24 * 0.8), "双方达成调解协议")
        if outcome == "failed":
            step("fail", level, "failed", rng.uniform(4, 72), "双方分歧较大，调解不成")
        if outcome == "referred":
            target = rng.choice(["labour", "medical", "property", "traffic", "land_forest", "urban_construction",
                                 "police", "urban_management", "court"])
            step("refer", level, "referred", rng.uniform(2, 48), "转专业调委会", target=target)
        handled_level = level if outcome in ("resolved", "closed", "failed") else None
        verify_level = {"grid": "community", "community": "street", "street": "street"}[level]
        satisfaction = None
        if outcome == "closed":
            t, satisfaction = self._close(steps, t, level, actors[verify_level])
            status = "closed"
        due = level_entered + timedelta(days=limits[level])
        case_due = reported + timedelta(days=30)
        closed_at = t if status == "closed" else None
        resolved_at = next((s["at"] for s in reversed(steps) if s["action"] == "resolve"), None)
        bx = rng.random() < 0.7
        self.w.add(Incident, {
            "id": iid, "grid_id": grid["id"], "community_id": comm["id"], "street_id": street["id"], "category": cat,
            "subcategory": sub, "title": title, "description": f"{baddr}：{title}。",
            "level": level, "status": status, "priority": rng.choices(["low", "normal", "high", "urgent"], [15, 65, 15, 5])[0],
            "source": rng.choice(["patrol", "visit", "hotline", "walk_in"]), "occurred_at": reported - timedelta(hours=rng.uniform(0, 48)),
            "reported_at": reported, "reporter_id": reporter, "handler_id": actors[level],
            "building_id": bid if bx else None, "lon": None, "lat": None, "location_text": baddr,
            "level_entered_at": level_entered, "due_at": due if status not in ("closed", "merged") else None,
            "case_due_at": case_due, "handled_level": handled_level,
            "agreement_text": "双方自愿达成如下协议：" + rng.choice(["一方赔偿维修费用", "物业限期整改", "双方互谅互让，各自承担"])
            if resolved_at else None,
            "agreement_terms": None, "referral_target": next((s["target"] for s in steps if s["action"] == "refer"), None),
            "referral_outcome": None, "resolved_at": resolved_at, "closed_at": closed_at,
            "closed_on_time": (closed_at <= case_due) if closed_at else None, "satisfaction": satisfaction,
            "merged_into_id": None, "uuid": rng.uuid(), "version": len(steps), "created_at": reported,
            "updated_at": t,
        })
        for seq, s in enumerate(steps, 1):
            self.w.add(IncidentStep, {"id": self.ids.next("incident_steps"), "uuid": rng.uuid(), "incident_id": iid,
                                      "seq": seq, "at": s["at"], "actor_id": s["actor"], "actor_name": None,
                                      "action": s["action"], "from_level": s["from_level"], "to_level": s["to_level"],
                                      "from_status": s["from_status"], "to_status": s["to_status"],
                                      "target": s["target"], "note": s["note"]})
        if cat == "dispute" and self.grid_residents:
            self._parties(iid)

    def _outcome(self, age_days: float) -> str:
        """Where a case of this age has got to (older cases are further along)."""
        rng = self.rng
        if age_days < 2:
            return rng.choice(["reported", "accepted"])
        if age_days < 25:
            return rng.choices(["accepted", "in_progress", "resolved", "closed", "failed", "referred"],
                               [10, 25, 15, 40, 4, 6])[0]
        return rng.choices(["closed", "in_progress", "referred", "failed", "resolved"], [88, 4, 4, 2, 2])[0]

    def _close(self, steps: list[dict[str, Any]], t: datetime, level: str, verifier: int) -> tuple[datetime, str]:
        """Append the verification and the evaluation of a closed case: (closing time, satisfaction)."""
        rng = self.rng
        t = min(t + timedelta(hours=rng.uniform(2, 48)), self.as_of)
        steps.append({"action": "verify", "from_level": level, "to_level": level, "from_status": "resolved",
                      "to_status": "closed", "at": t, "note": "核查属实，予以结案", "target": None, "actor": verifier})
        satisfaction = rng.choices(["satisfied", "basic", "unsatisfied"], [78, 18, 4])[0]
        if satisfaction == "unsatisfied":
            satisfaction = "basic"  # an unsatisfied evaluation would have reopened the case
        steps.append({"action": "evaluate", "from_level": level, "to_level": level, "from_status": "closed",
                      "to_status": "closed", "at": t, "note": None, "target": satisfaction, "actor": verifier})
        return t, satisfaction

    def _parties(self, incident_id: int) -> None:
        """The applicant and the respondent of a dispute, drawn from the grid's residents."""
        for role in ("applicant", "respondent"):
            rid, name = self.rng.choice(self.grid_residents)
            self.w.add(IncidentParty, {"id": self.ids.next("incident_parties"), "incident_id": incident_id,
                                       "resident_id": rid, "name": name, "role": role, "phone": None})


def iter_rows_digest(database: Database) -> Iterator[tuple[str, str]]:
    """(table, sha256 of all rows ordered by primary key) — used to prove determinism."""
    import hashlib

    with database.engine.connect() as conn:
        for t in Base.metadata.sorted_tables:
            pk = ", ".join(c.name for c in t.primary_key.columns)
            h = hashlib.sha256()
            for row in conn.execute(text(f"SELECT * FROM {t.name} ORDER BY {pk}")):
                h.update(repr(tuple(row)).encode())
            yield t.name, h.hexdigest()

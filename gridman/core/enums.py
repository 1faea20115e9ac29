"""Enumerations of the domain, stored as short English codes, shown with Chinese/English labels.

The database keeps the code (portable, readable in SQL); the label tables are the one source of
the words users see. ``label(enum_value, lang)`` gives the text; ``parse(EnumCls, text)`` accepts a
code, a Chinese or English label or a known synonym (``SYNONYMS``: what clerks type, 妻 → 配偶),
all compared through one normalisation, :func:`text_key` (full-width → half-width, no spaces,
lower case). The census import, the offline exchange, export filters and the GUI all parse
through :func:`lookup` / :func:`parse`; there is no second table.
"""

from __future__ import annotations

import unicodedata
from enum import StrEnum
from typing import Any


class AreaLevel(StrEnum):
    CITY = "city"  # 市
    DISTRICT = "district"  # 区/县/开发区
    STREET = "street"  # 街道 / 社区管理委员会
    COMMUNITY = "community"  # 社区
    GRID = "grid"  # 网格


class Sex(StrEnum):
    MALE = "M"
    FEMALE = "F"


class PopulationType(StrEnum):
    REGISTERED = "registered"  # 户籍人口
    FLOATING = "floating"  # 流动人口
    SEPARATED = "separated"  # 人户分离
    FOREIGN = "foreign"  # 境外人员


class Relation(StrEnum):
    HEAD = "head"  # 户主
    SPOUSE = "spouse"  # 配偶
    CHILD = "child"  # 子女
    PARENT = "parent"  # 父母
    GRANDPARENT = "grandparent"  # 祖父母/外祖父母
    GRANDCHILD = "grandchild"  # 孙子女/外孙子女
    SIBLING = "sibling"  # 兄弟姐妹
    CHILD_IN_LAW = "child_in_law"  # 儿媳/女婿
    TENANT = "tenant"  # 租住人员
    OTHER = "other"  # 其他


class ResidentStatus(StrEnum):
    ACTIVE = "active"  # 在住
    MOVED_OUT = "moved_out"  # 迁出
    DECEASED = "deceased"  # 死亡


class TagCategory(StrEnum):
    CARE = "care"  # 关爱对象 / 特殊人群
    WATCH = "watch"  # 重点人群
    SERVICE_CARD = "service_card"  # 合肥服务卡


class HouseUse(StrEnum):
    OWNER = "owner"  # 自住
    RENTED = "rented"  # 出租
    VACANT = "vacant"  # 空置
    COMMERCIAL = "commercial"  # 商用


class PremiseKind(StrEnum):
    SHOP = "shop"  # 商铺
    RESTAURANT = "restaurant"  # 餐饮
    SCHOOL = "school"  # 学校/幼儿园
    CLINIC = "clinic"  # 诊所/医疗机构
    NINE_SMALL = "nine_small"  # 九小场所
    RENTAL_HOUSING = "rental_housing"  # 出租房/群租房
    FACTORY = "factory"  # 企业/作坊
    HOTEL = "hotel"  # 旅馆
    OTHER = "other"  # 其他


class FacilityKind(StrEnum):
    OFFICE = "office"  # 社区办公用房
    ACTIVITY_ROOM = "activity_room"  # 居民活动用房
    SERVICE_CENTER = "service_center"  # 社区服务中心/站
    POLICE_ROOM = "police_room"  # 警务室
    HEALTH_STATION = "health_station"  # 社区卫生服务站
    LIBRARY = "library"  # 图书室
    ELDERLY_CARE = "elderly_care"  # 养老服务站
    OTHER = "other"


class VisitKind(StrEnum):
    ROUTINE = "routine"  # 日常走访
    CARE = "care"  # 关爱走访
    WATCH = "watch"  # 重点人员走访
    VERIFY = "verify"  # 信息核查
    FOLLOW_UP = "follow_up"  # 事件回访


class PopulationEventKind(StrEnum):
    MOVE_IN = "move_in"  # 迁入
    MOVE_OUT = "move_out"  # 迁出
    BIRTH = "birth"  # 出生
    DEATH = "death"  # 死亡
    TRANSFER = "transfer"  # 户内变更/转移


class IncidentCategory(StrEnum):
    DISPUTE = "dispute"  # 矛盾纠纷
    HAZARD = "hazard"  # 安全隐患
    REQUEST = "request"  # 群众诉求
    PUBLIC_ORDER = "public_order"  # 社会治安
    ENVIRONMENT = "environment"  # 环境卫生
    OTHER = "other"  # 其他


class DisputeKind(StrEnum):
    FAMILY = "family"  # 婚姻家庭
    NEIGHBOUR = "neighbour"  # 邻里
    PROPERTY_MGMT = "property_mgmt"  # 物业管理
    LABOUR = "labour"  # 劳动争议
    LAND = "land"  # 土地
    MEDICAL = "medical"  # 医疗
    TRAFFIC = "traffic"  # 交通事故
    OTHER = "other"


class MediationLevel(StrEnum):
    GRID = "grid"  # 网格
    COMMUNITY = "community"  # 社区
    STREET = "street"  # 街道


class IncidentStatus(StrEnum):
    REPORTED = "reported"  # 已上报
    ACCEPTED = "accepted"  # 已受理
    IN_PROGRESS = "in_progress"  # 处理中
    RESOLVED = "resolved"  # 调解成功 (待核查)
    FAILED = "failed"  # 调解不成
    REFERRED = "referred"  # 已分流
    CLOSED = "closed"  # 已结案 (核查通过)
    MERGED = "merged"  # 已合并 (重复)


OPEN_STATUSES = (
    IncidentStatus.REPORTED,
    IncidentStatus.ACCEPTED,
    IncidentStatus.IN_PROGRESS,
    IncidentStatus.FAILED,
    IncidentStatus.REFERRED,
)


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class ReferralTarget(StrEnum):
    # Guiyang's seven professional mediation committees (专业调委会)
    LABOUR = "labour"
    MEDICAL = "medical"
    MINE_COMMUNITY = "mine_community"
    PROPERTY = "property"
    TRAFFIC = "traffic"
    LAND_FOREST = "land_forest"
    URBAN_CONSTRUCTION = "urban_construction"
    # departments
    POLICE = "police"
    URBAN_MANAGEMENT = "urban_management"
    COURT = "court"


class Satisfaction(StrEnum):
    SATISFIED = "satisfied"  # 满意
    BASIC = "basic"  # 基本满意
    UNSATISFIED = "unsatisfied"  # 不满意


class OrgKind(StrEnum):
    PARTY = "party"  # 党组织
    RESIDENTS_COMMITTEE = "residents_committee"  # 居民委员会
    WORKSTATION = "workstation"  # 社区工作站
    PROPERTY_COMPANY = "property_company"  # 物业服务企业
    OWNERS_COMMITTEE = "owners_committee"  # 业主委员会
    SOCIAL_ORG = "social_org"  # 社会组织
    EMPLOYER = "employer"  # 驻区单位/企业
    VOLUNTEER_TEAM = "volunteer_team"  # 志愿服务队
    RESIDENTS_COUNCIL = "residents_council"  # 居民议事会


class SocialOrgRegistration(StrEnum):
    REGISTERED = "registered"  # 登记
    FILED = "filed"  # 备案


class SocialOrgField(StrEnum):
    CULTURE_SPORT = "culture_sport"  # 文体
    CHARITY = "charity"  # 公益慈善
    VOLUNTEER = "volunteer"  # 志愿服务
    SOCIAL_WORK = "social_work"  # 专业社工


class Role(StrEnum):
    WARDEN = "warden"  # 网格员
    COMMUNITY_STAFF = "community_staff"  # 社区工作人员
    STREET_SUPERVISOR = "street_supervisor"  # 街道综治中心
    CLERK = "clerk"  # 内勤/统计员
    ADMIN = "admin"  # 系统管理员


# (member, Chinese, English). Members of different enumerations may share a code ("other",
# "registered", "care", "labour"…) and StrEnum members hash like their code, so the table is
# keyed by (enumeration, code), never by the member alone.
_LABEL_ROWS: list[tuple[StrEnum, str, str]] = [
    (AreaLevel.CITY, "市", "City"),
    (AreaLevel.DISTRICT, "区县", "District"),
    (AreaLevel.STREET, "街道", "Street"),
    (AreaLevel.COMMUNITY, "社区", "Community"),
    (AreaLevel.GRID, "网格", "Grid"),
    (Sex.MALE, "男", "Male"),
    (Sex.FEMALE, "女", "Female"),
    (PopulationType.REGISTERED, "户籍人口", "Registered"),
    (PopulationType.FLOATING, "流动人口", "Floating"),
    (PopulationType.SEPARATED, "人户分离", "Separated from registration"),
    (PopulationType.FOREIGN, "境外人员", "Foreign"),
    (Relation.HEAD, "户主", "Head"),
    (Relation.SPOUSE, "配偶", "Spouse"),
    (Relation.CHILD, "子女", "Child"),
    (Relation.PARENT, "父母", "Parent"),
    (Relation.GRANDPARENT, "祖父母", "Grandparent"),
    (Relation.GRANDCHILD, "孙子女", "Grandchild"),
    (Relation.SIBLING, "兄弟姐妹", "Sibling"),
    (Relation.CHILD_IN_LAW, "儿媳/女婿", "Child-in-law"),
    (Relation.TENANT, "租住人员", "Tenant"),
    (Relation.OTHER, "其他", "Other"),
    (ResidentStatus.ACTIVE, "在住", "Active"),
    (ResidentStatus.MOVED_OUT, "迁出", "Moved out"),
    (ResidentStatus.DECEASED, "死亡", "Deceased"),
    (TagCategory.CARE, "关爱对象", "Care group"),
    (TagCategory.WATCH, "重点人群", "Watch group"),
    (TagCategory.SERVICE_CARD, "服务卡", "Service card"),
    (HouseUse.OWNER, "自住", "Owner-occupied"),
    (HouseUse.RENTED, "出租", "Rented"),
    (HouseUse.VACANT, "空置", "Vacant"),
    (HouseUse.COMMERCIAL, "商用", "Commercial"),
    (PremiseKind.SHOP, "商铺", "Shop"),
    (PremiseKind.RESTAURANT, "餐饮", "Restaurant"),
    (PremiseKind.SCHOOL, "学校", "School"),
    (PremiseKind.CLINIC, "诊所", "Clinic"),
    (PremiseKind.NINE_SMALL, "九小场所", "Small venue"),
    (PremiseKind.RENTAL_HOUSING, "出租房屋", "Rental housing"),
    (PremiseKind.FACTORY, "企业", "Enterprise"),
    (PremiseKind.HOTEL, "旅馆", "Hotel"),
    (PremiseKind.OTHER, "其他", "Other"),
    (FacilityKind.OFFICE, "办公用房", "Office"),
    (FacilityKind.ACTIVITY_ROOM, "活动用房", "Activity room"),
    (FacilityKind.SERVICE_CENTER, "服务中心", "Service centre"),
    (FacilityKind.POLICE_ROOM, "警务室", "Police room"),
    (FacilityKind.HEALTH_STATION, "卫生服务站", "Health station"),
    (FacilityKind.LIBRARY, "图书室", "Library"),
    (FacilityKind.ELDERLY_CARE, "养老服务站", "Elderly care"),
    (FacilityKind.OTHER, "其他", "Other"),
    (VisitKind.ROUTINE, "日常走访", "Routine visit"),
    (VisitKind.CARE, "关爱走访", "Care visit"),
    (VisitKind.WATCH, "重点走访", "Watch visit"),
    (VisitKind.VERIFY, "信息核查", "Verification"),
    (VisitKind.FOLLOW_UP, "事件回访", "Follow-up"),
    (PopulationEventKind.MOVE_IN, "迁入", "Moved in"),
    (PopulationEventKind.MOVE_OUT, "迁出", "Moved out"),
    (PopulationEventKind.BIRTH, "出生", "Birth"),
    (PopulationEventKind.DEATH, "死亡", "Death"),
    (PopulationEventKind.TRANSFER, "变更", "Transfer"),
    (IncidentCategory.DISPUTE, "矛盾纠纷", "Dispute"),
    (IncidentCategory.HAZARD, "安全隐患", "Hazard"),
    (IncidentCategory.REQUEST, "群众诉求", "Resident request"),
    (IncidentCategory.PUBLIC_ORDER, "社会治安", "Public order"),
    (IncidentCategory.ENVIRONMENT, "环境卫生", "Environment"),
    (IncidentCategory.OTHER, "其他", "Other"),
    (DisputeKind.FAMILY, "婚姻家庭纠纷", "Family"),
    (DisputeKind.NEIGHBOUR, "邻里纠纷", "Neighbour"),
    (DisputeKind.PROPERTY_MGMT, "物业纠纷", "Property management"),
    (DisputeKind.LABOUR, "劳动争议", "Labour"),
    (DisputeKind.LAND, "土地纠纷", "Land"),
    (DisputeKind.MEDICAL, "医疗纠纷", "Medical"),
    (DisputeKind.TRAFFIC, "交通事故纠纷", "Traffic"),
    (DisputeKind.OTHER, "其他纠纷", "Other"),
    (MediationLevel.GRID, "网格", "Grid"),
    (MediationLevel.COMMUNITY, "社区", "Community"),
    (MediationLevel.STREET, "街道", "Street"),
    (IncidentStatus.REPORTED, "已上报", "Reported"),
    (IncidentStatus.ACCEPTED, "已受理", "Accepted"),
    (IncidentStatus.IN_PROGRESS, "处理中", "In progress"),
    (IncidentStatus.RESOLVED, "调解成功待核查", "Resolved, awaiting verification"),
    (IncidentStatus.FAILED, "调解不成", "Mediation failed"),
    (IncidentStatus.REFERRED, "已分流", "Referred"),
    (IncidentStatus.CLOSED, "已结案", "Closed"),
    (IncidentStatus.MERGED, "已合并", "Merged"),
    (Priority.LOW, "低", "Low"),
    (Priority.NORMAL, "一般", "Normal"),
    (Priority.HIGH, "高", "High"),
    (Priority.URGENT, "紧急", "Urgent"),
    (ReferralTarget.LABOUR, "劳动争议调委会", "Labour mediation committee"),
    (ReferralTarget.MEDICAL, "医疗纠纷调委会", "Medical mediation committee"),
    (ReferralTarget.MINE_COMMUNITY, "矿社纠纷调委会", "Mine–community mediation committee"),
    (ReferralTarget.PROPERTY, "物业纠纷调委会", "Property mediation committee"),
    (ReferralTarget.TRAFFIC, "交通事故调委会", "Traffic mediation committee"),
    (ReferralTarget.LAND_FOREST, "林地纠纷调委会", "Land and forest mediation committee"),
    (ReferralTarget.URBAN_CONSTRUCTION, "城建纠纷调委会", "Urban construction mediation committee"),
    (ReferralTarget.POLICE, "公安机关", "Police"),
    (ReferralTarget.URBAN_MANAGEMENT, "城管部门", "Urban management"),
    (ReferralTarget.COURT, "人民法院", "Court"),
    (Satisfaction.SATISFIED, "满意", "Satisfied"),
    (Satisfaction.BASIC, "基本满意", "Basically satisfied"),
    (Satisfaction.UNSATISFIED, "不满意", "Unsatisfied"),
    (OrgKind.PARTY, "党组织", "Party organisation"),
    (OrgKind.RESIDENTS_COMMITTEE, "居民委员会", "Residents' committee"),
    (OrgKind.WORKSTATION, "社区工作站", "Community workstation"),
    (OrgKind.PROPERTY_COMPANY, "物业服务企业", "Property company"),
    (OrgKind.OWNERS_COMMITTEE, "业主委员会", "Owners' committee"),
    (OrgKind.SOCIAL_ORG, "社会组织", "Social organisation"),
    (OrgKind.EMPLOYER, "驻区单位", "Employer / unit"),
    (OrgKind.VOLUNTEER_TEAM, "志愿服务队", "Volunteer team"),
    (OrgKind.RESIDENTS_COUNCIL, "居民议事会", "Residents' council"),
    (SocialOrgRegistration.REGISTERED, "登记", "Registered"),
    (SocialOrgRegistration.FILED, "备案", "Filed"),
    (SocialOrgField.CULTURE_SPORT, "文体类", "Culture and sport"),
    (SocialOrgField.CHARITY, "公益慈善类", "Charity"),
    (SocialOrgField.VOLUNTEER, "志愿服务类", "Volunteer service"),
    (SocialOrgField.SOCIAL_WORK, "专业社工类", "Professional social work"),
    (Role.WARDEN, "网格员", "Grid warden"),
    (Role.COMMUNITY_STAFF, "社区工作人员", "Community staff"),
    (Role.STREET_SUPERVISOR, "街道督办员", "Street supervisor"),
    (Role.CLERK, "内勤统计员", "Clerk"),
    (Role.ADMIN, "系统管理员", "Administrator"),
]

LABELS: dict[tuple[type[StrEnum], str], tuple[str, str]] = {
    (type(m), m.value): (zh, en) for m, zh, en in _LABEL_ROWS
}


def label_pair(value: StrEnum) -> tuple[str, str] | None:
    """(Chinese, English) label of a member, or None."""
    return LABELS.get((type(value), value.value))


def label(value: StrEnum | str, lang: str = "zh_CN", enum: type[StrEnum] | None = None) -> str:
    """User-visible text for an enumeration value (Chinese by default)."""
    if enum is not None and not isinstance(value, enum):
        try:
            value = enum(value)
        except ValueError:
            return str(value)
    pair = label_pair(value) if isinstance(value, StrEnum) else None
    if pair is None:
        return str(value)
    return pair[1] if lang.startswith("en") else pair[0]


def labels(enum: type[StrEnum], lang: str = "zh_CN") -> list[str]:
    """The labels of every member, in declaration order (drop-down lists, "可填：…" hints)."""
    return [label(m, lang) for m in enum]


# What people type for a member besides its code and labels (census sheets, offline packages).
# Keys are compared through text_key, so 'Male', 'MALE' and 'ｍａｌｅ' are one synonym.
SYNONYMS: dict[type[StrEnum], dict[str, str]] = {
    Sex: {"男性": "M", "女性": "F", "m": "M", "f": "F", "1": "M", "2": "F"},
    PopulationType: {
        "户籍": "registered", "常住户籍": "registered", "户籍人员": "registered",
        "流动": "floating", "流动人员": "floating", "外来人口": "floating", "暂住人口": "floating",
        "人户分离人员": "separated", "人户分离人口": "separated",
        "境外": "foreign", "境外人口": "foreign", "外籍人员": "foreign", "外国人": "foreign",
    },
    Relation: {
        "本人": "head", "户主本人": "head", "妻": "spouse", "夫": "spouse", "妻子": "spouse", "丈夫": "spouse",
        "子": "child", "女": "child", "儿子": "child", "女儿": "child", "长子": "child", "长女": "child",
        "次子": "child", "次女": "child", "养子": "child", "养女": "child", "继子": "child", "继女": "child",
        "父亲": "parent", "母亲": "parent", "父": "parent", "母": "parent", "岳父": "parent", "岳母": "parent",
        "公公": "parent", "婆婆": "parent",
        "祖父": "grandparent", "祖母": "grandparent", "外祖父": "grandparent", "外祖母": "grandparent",
        "孙子": "grandchild", "孙女": "grandchild", "外孙子": "grandchild", "外孙女": "grandchild",
        "外孙": "grandchild",
        "兄": "sibling", "弟": "sibling", "姐": "sibling", "妹": "sibling", "哥哥": "sibling", "弟弟": "sibling",
        "姐姐": "sibling", "妹妹": "sibling",
        "儿媳": "child_in_law", "女婿": "child_in_law",
        "租户": "tenant", "租客": "tenant", "承租人": "tenant", "租住": "tenant",
        "其他亲属": "other", "非亲属": "other",
    },
    ResidentStatus: {
        "正常": "active", "在册": "active", "现住": "active", "已迁出": "moved_out", "注销": "moved_out",
        "死亡注销": "deceased", "已故": "deceased",
    },
}


def text_key(text: Any) -> str:
    """THE normalisation for matching typed text against codes, labels and synonyms: full-width
    forms folded (NFKC: Ａ→A, ０→0, the ideographic space), every space removed, lower case."""
    return "".join(unicodedata.normalize("NFKC", str(text)).split()).lower()


_LOOKUP: dict[type[StrEnum], dict[str, str]] = {}


def lookup(enum: type[StrEnum]) -> dict[str, str]:
    """text_key(code / Chinese label / English label / synonym) → code, built once per enumeration.
    Codes and labels come first; a synonym never overrides them."""
    table = _LOOKUP.get(enum)
    if table is None:
        table = {}
        for m in enum:
            zh, en = label_pair(m) or (m.value, m.value)
            for t in (m.value, zh, en):
                table.setdefault(text_key(t), m.value)
        for t, code in SYNONYMS.get(enum, {}).items():
            table.setdefault(text_key(t), enum(code).value)
        _LOOKUP[enum] = table
    return table


def parse(enum: type[StrEnum], text: Any) -> StrEnum:
    """A code, a Chinese or English label or a synonym (see :func:`text_key`) → the member.
    Raises ValueError."""
    code = lookup(enum).get(text_key(text))
    if code is None:
        raise ValueError(f"{text!r} is not a valid {enum.__name__}")
    return enum(code)

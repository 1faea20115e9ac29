"""THE declarations: every register's fields, once (see :mod:`gridman.core.fields`).

Registers are declared in dependency order (a register comes after those it refers to): the
offline exchange writes and merges them in this order.

Labels: where the copies this replaced disagreed, the catalogue took the export's header (what the
import templates carry and clerks know), 公民身份号码 (the standard's term) for the citizen ID, and
kept the other spellings as import synonyms. Where the offline exchange workbook already used
another header, that header is kept as the field's ``exchange`` header: packages checked out before
the change are read by header and must keep being read.
"""

from __future__ import annotations

from dataclasses import replace

from gridman.core.enums import (
    DisputeKind,
    IncidentCategory,
    IncidentStatus,
    MediationLevel,
    OrgKind,
    PopulationType,
    PremiseKind,
    Priority,
    ReferralTarget,
    Relation,
    ResidentStatus,
    Role,
    Satisfaction,
    Sex,
    SocialOrgField,
    SocialOrgRegistration,
    VisitKind,
)
from gridman.core.fields.spec import CHOICE_EN, RegisterFields, f

VIEW_ID_NUMBER = "view_id_number"  # Perm.VIEW_ID_NUMBER
VIEW_SENSITIVE_TAGS = "view_sensitive_tags"  # Perm.VIEW_SENSITIVE_TAGS

HOUSEHOLD_KINDS = {"family": "家庭户", "collective": "集体户"}
STEP_ACTIONS = {
    "report": "上报", "accept": "受理", "escalate": "上报上级", "handle": "处理", "resolve": "调解成功",
    "fail": "调解不成", "refer": "分流", "return": "退回", "verify": "核查结案", "evaluate": "评价",
    "reopen": "重新办理", "merge": "合并", "note": "备注",
}
CHOICE_EN.update({
    "家庭户": "Family household", "集体户": "Collective household",
    "上报": "Report", "受理": "Accept", "上报上级": "Escalate", "处理": "Handle", "调解成功": "Resolve",
    "调解不成": "Mediation failed", "分流": "Refer", "退回": "Return", "核查结案": "Verify and close",
    "评价": "Evaluate", "重新办理": "Reopen", "合并": "Merge", "备注": "Note",
})

# Fields several registers share, declared once.
GRID_CODE = f("grid_code", "网格编码", "Grid code", "area", column="grid_id", width=18, synonyms=("网格编号", "grid_code"))
GRID_CODE_NOT_BLANK = replace(GRID_CODE, not_blank=True)
GRID = f("grid", "网格", "Grid", column=None, width=10,
         synonyms=("网格编码", "网格编号", "网格名称", "所属网格", "grid code", "grid_code"))
ADDRESS = f("address", "地址", "Address", width=30)
LON = f("lon", "经度", "Longitude", "float", width=11)
LAT = f("lat", "纬度", "Latitude", "float", width=11)
NOTE = f("note", "备注", "Note", width=20, note="可选", synonyms=("说明", "notes", "remark", "remarks"))
PHONE = f("phone", "联系电话", "Phone", "code", width=14, note="可选，手机 11 位或带区号固话",
          synonyms=("电话", "手机", "手机号", "手机号码", "联系方式", "电话号码", "mobile", "telephone", "tel"))
CONTACT_NAME = f("contact_name", "联系人", "Contact", width=10)
CONTACT_PHONE = f("contact_phone", "联系电话", "Phone", "code", width=14)
BUILDING_CODE = f("building_code", "楼栋编码", "Building code", "refkey", column="building_id", ref="buildings",
                  width=20)
BUILDING_UUID = f("building_uuid", "楼栋UUID", "Building UUID", "ref", column="building_id", ref="buildings",
                  hidden=True)
HOUSEHOLD_NO = f("household_no", "户号", "Household no.", "refkey", column="household_id", ref="households",
                 width=14, required=True, identity=True, note="必填，同一户填同一户号",
                 synonyms=("户编号", "户籍编号", "家庭户号", "household", "household number", "household id"))
HOUSEHOLD_UUID = f("household_uuid", "户UUID", "Household UUID", "ref", column="household_id", ref="households",
                   hidden=True)


BUILDINGS = RegisterFields(
    "buildings", "buildings", "楼栋", "Buildings", "楼栋台账", (
        f("code", "楼栋编码", "Building code", "code", width=16),
        f("name", "楼栋名称", "Building name", width=12, required=True, not_blank=True),
        GRID_CODE, GRID, ADDRESS,
        f("floors", "层数", "Floors", "int", width=6),
        f("units", "单元数", "Units", "int", width=6),
        LON, LAT,
        f("built_year", "建成年份", "Year built", "int", width=8),
        NOTE,
        f("households", "户数", "Households", "int", column=None, width=6),
    ), {
        "list": ("name", "code", "address", "floors", "units", "households", "grid"),
        "export": ("code", "name", "grid_code", "address", "floors", "units", "lon", "lat", "built_year", "note"),
        "exchange": ("code", "name", "grid_code", "address", "floors", "units", "lon", "lat", "built_year", "note"),
    }, natkey="code")

HOUSEHOLDS = RegisterFields(
    "households", "households", "户", "Households", "户籍台账", (
        f("household_no", "户号", "Household no.", "code", width=14, required=True, not_blank=True),
        GRID_CODE_NOT_BLANK, GRID,
        f("building", "楼栋", "Building", column=None, width=10),
        BUILDING_CODE, BUILDING_UUID,
        f("address", "地址", "Address", width=30, exchange="现住址"),
        f("kind", "户类型", "Household kind", "choice", choices=HOUSEHOLD_KINDS, width=10),
        PHONE,
        f("members", "人数", "Members", "int", column=None, width=6),
        f("head", "户主", "Head", column=None, width=10),
        NOTE,
    ), {
        "list": ("household_no", "address", "members", "head", "phone", "grid"),
        "export": ("household_no", "grid_code", "grid", "building", "address", "kind", "phone", "members", "head",
                   "note"),
        "exchange": ("household_no", "grid_code", "building_code", "building_uuid", "address", "kind", "phone",
                     "note"),
    }, natkey="household_no")

RESIDENTS = RegisterFields(
    "residents", "residents", "实有人口", "Residents", "实有人口台账", (
        HOUSEHOLD_NO, HOUSEHOLD_UUID,
        f("grid_code", "网格编码", "Grid code", "area", column="grid_id", width=18, not_blank=True,
          note="新户必填：网格编码或名称"),
        GRID,
        f("building", "楼栋", "Building", column=None, width=10, note="可选：楼栋编码或名称",
          synonyms=("楼栋编码", "楼栋号", "楼栋名称", "所在楼栋", "楼号", "building code")),
        f("household_address", "户地址", "Household address", column=None, width=24, synonyms=("家庭住址",)),
        f("name", "姓名", "Name", width=10, required=True, not_blank=True, identity=True, note="必填",
          synonyms=("名字", "人员姓名", "full name")),
        f("sex", "性别", "Sex", "enum", enum=Sex, width=6, note="可选，可由身份证号推出", synonyms=("gender",)),
        f("ethnicity", "民族", "Ethnicity", width=8, note="可选，如 汉族", synonyms=("nation", "nationality")),
        f("citizen_id", "公民身份号码", "Citizen ID", "idno", sensitive=VIEW_ID_NUMBER, width=21, identity=True,
          note="18 位，文本格式（15 位老号码自动升为 18 位）",
          synonyms=("身份证号", "身份证号码", "证件号码", "身份证", "证件号", "公民身份证号", "id_card", "id_number",
                    "id card", "id number", "citizen_id")),
        f("birth_date", "出生日期", "Birth date", "date", width=12, note="可选，yyyy-mm-dd",
          synonyms=("出生年月", "出生年月日", "生日", "birthday", "date of birth", "dob")),
        PHONE,
        f("landline", "固定电话", "Landline", "code", width=14, note="可选，带区号，如 0551-62345678",
          synonyms=("座机", "座机号码", "固话", "家庭电话", "住宅电话", "宅电", "办公电话", "landline")),
        f("registered_address", "户籍地址", "Registered address", width=24, note="可选", exchange="户籍地",
          synonyms=("户籍地", "户籍所在地", "户口所在地", "户籍住址", "hukou address")),
        f("current_address", "现住址", "Current address", width=24, note="可选",
          synonyms=("现居住地", "居住地址", "现居住地址", "实际居住地址", "住址", "address")),
        f("relation_to_head", "与户主关系", "Relation to head", "enum", enum=Relation, width=10,
          note="必填，一户一位户主", synonyms=("户主关系", "关系", "与户主的关系", "relationship", "relation")),
        f("population_type", "人口类型", "Population type", "enum", enum=PopulationType, width=10, not_blank=True,
          note="可选，默认户籍人口", synonyms=("人员类型", "人口类别", "人员类别", "type")),
        f("residence_permit_no", "居住证号", "Residence permit no.", "code", width=16, note="流动人口可填",
          synonyms=("居住证号码", "居住证编号", "residence permit")),
        f("residence_permit_expiry", "居住证有效期", "Residence permit expiry", "date", width=12, note="yyyy-mm-dd",
          synonyms=("居住证有效期至", "居住证到期日期", "permit expiry")),
        f("education", "文化程度", "Education", width=10, note="可选", synonyms=("学历",)),
        f("marital_status", "婚姻状况", "Marital status", width=10, note="可选", synonyms=("婚姻状态",)),
        f("political_status", "政治面貌", "Political status", width=10, note="可选"),
        f("employer", "工作单位", "Employer", width=20, note="可选", synonyms=("服务处所", "就业单位", "workplace")),
        f("status", "人员状态", "Status", "enum", enum=ResidentStatus, width=8, not_blank=True, note="可选，默认在住",
          exchange="状态", synonyms=("状态", "居住状态")),
        f("tags", "标签", "Tags", "tags", column=None, sensitive=VIEW_SENSITIVE_TAGS, width=16,
          note="可选，多个用、分隔", synonyms=("人员标签", "特殊人群", "重点人群", "人员属性", "tag")),
        NOTE,
    ), {
        "list": ("name", "sex", "citizen_id", "birth_date", "population_type", "relation_to_head", "household_no",
                 "grid", "phone", "tags"),
        "export": ("household_no", "grid_code", "building", "name", "sex", "ethnicity", "citizen_id", "birth_date",
                   "phone", "landline", "registered_address", "current_address", "relation_to_head", "population_type",
                   "residence_permit_no", "residence_permit_expiry", "education", "marital_status",
                   "political_status", "employer", "status", "tags", "note"),
        "exchange": ("name", "sex", "ethnicity", "citizen_id", "birth_date", "phone", "household_no",
                     "household_uuid", "grid_code", "relation_to_head", "population_type", "registered_address",
                     "current_address", "residence_permit_no", "residence_permit_expiry", "education",
                     "marital_status", "political_status", "employer", "status", "note"),
        "census": ("household_no", "grid", "building", "household_address", "name", "sex", "ethnicity", "citizen_id",
                   "birth_date", "phone", "landline", "registered_address", "current_address", "relation_to_head",
                   "population_type", "residence_permit_no", "residence_permit_expiry", "education",
                   "marital_status", "political_status", "employer", "status", "tags", "note"),
    }, aliases=("people",), importable=True)

PREMISES = RegisterFields(
    "premises", "premises", "场所", "Premises", "场所台账", (
        f("name", "场所名称", "Name", width=24, required=True, not_blank=True),
        f("kind", "场所类型", "Kind", "enum", enum=PremiseKind, width=10, required=True, not_blank=True, exchange="类型"),
        GRID_CODE, GRID, BUILDING_CODE, BUILDING_UUID, ADDRESS, CONTACT_NAME, CONTACT_PHONE,
        f("license_no", "证照号", "Licence no.", "code", width=20),
        f("last_inspected", "最近检查日期", "Last inspected", "date", width=12),
        LON, LAT, NOTE,
    ), {
        "list": ("name", "kind", "address", "contact_name", "contact_phone", "last_inspected", "grid"),
        "export": ("name", "kind", "grid_code", "address", "contact_name", "contact_phone", "license_no",
                   "last_inspected", "lon", "lat", "note"),
        "exchange": ("name", "kind", "grid_code", "building_code", "building_uuid", "address", "lon", "lat",
                     "contact_name", "contact_phone", "license_no", "last_inspected", "note"),
    })

ORGANISATIONS = RegisterFields(
    "organisations", "organisations", "组织", "Organisations", "组织台账", (
        f("name", "组织名称", "Name", width=24, required=True, not_blank=True, exchange="名称"),
        f("kind", "组织类型", "Kind", "enum", enum=OrgKind, width=12, required=True, not_blank=True,
          exchange="类型"),
        f("area_code", "所属区划编码", "Area code", "area", column="area_id", width=18, not_blank=True),
        f("area", "所属区划", "Area", column=None, width=12),
        f("registration", "登记方式", "Registration", "enum", enum=SocialOrgRegistration, width=8),
        f("field", "服务领域", "Field of service", "enum", enum=SocialOrgField, width=10),
        f("credit_code", "统一社会信用代码", "Unified social credit code", "code", width=20),
        ADDRESS, CONTACT_NAME, CONTACT_PHONE,
        f("contact_uuid", "联系人UUID", "Contact UUID", "ref", column="contact_resident_id", ref="residents",
          hidden=True),
        f("founded_on", "成立日期", "Founded", "date", width=12),
        f("member_count", "成员数", "Members", "int", width=6),
        NOTE,
    ), {
        "list": ("name", "kind", "contact_name", "contact_phone", "member_count", "area"),
        "export": ("name", "kind", "area_code", "area", "registration", "field", "credit_code", "address",
                   "contact_name", "contact_phone", "founded_on", "member_count", "note"),
        "exchange": ("name", "kind", "area_code", "registration", "field", "credit_code", "address", "contact_name",
                     "contact_phone", "contact_uuid", "founded_on", "member_count", "note"),
    }, aliases=("orgs",))

INCIDENTS = RegisterFields(
    "incidents", "incidents", "事件", "Incidents", "事件台账", (
        f("id", "事件编号", "No.", "int", width=8),
        f("title", "标题", "Title", width=24, not_blank=True),
        f("category", "类别", "Category", "enum", enum=IncidentCategory, width=10, not_blank=True),
        f("subcategory", "纠纷类型", "Dispute kind", "enum", enum=DisputeKind, width=12),
        GRID_CODE_NOT_BLANK, GRID,
        f("level", "当前层级", "Level", "enum", enum=MediationLevel, width=8, readonly=True,
          exchange="当前层级（随处置记录）"),
        f("status", "状态", "Status", "enum", enum=IncidentStatus, width=12, readonly=True,
          exchange="状态（随处置记录）"),
        f("priority", "优先级", "Priority", "enum", enum=Priority, width=6, not_blank=True),
        f("source", "来源", "Source", width=10),
        f("occurred_at", "发生时间", "Occurred", "datetime", width=17),
        f("reported_at", "上报时间", "Reported", "datetime", width=17, not_blank=True),
        f("due_at", "本级期限", "Due", "datetime", width=17),
        f("time_left", "剩余时间", "Time left", column=None),
        f("closed_at", "结案时间", "Closed", "datetime", width=17),
        f("closed_on_time", "按时办结", "Closed on time", "bool", width=8),
        f("reporter_id", "上报人账号", "Reported by", "user"),
        f("handler_id", "承办人账号", "Handler", "user"),
        BUILDING_CODE, BUILDING_UUID,
        f("location_text", "地点", "Location", width=24),
        LON, LAT,
        f("description", "描述", "Description", width=30),
        f("agreement_text", "调解协议", "Agreement", width=24),
        f("agreement_terms", "协议条款", "Agreement terms", width=20),
        f("referral_target", "分流去向", "Referred to", "enum", enum=ReferralTarget, width=14),
        f("referral_outcome", "分流结果", "Referral outcome", width=20),
        f("satisfaction", "满意度", "Satisfaction", "enum", enum=Satisfaction, width=8),
    ), {
        "list": ("id", "title", "category", "level", "status", "reported_at", "due_at", "time_left", "grid"),
        "export": ("id", "title", "category", "subcategory", "grid_code", "grid", "level", "status", "priority",
                   "reported_at", "due_at", "closed_at", "closed_on_time", "satisfaction", "location_text"),
        "exchange": ("title", "category", "subcategory", "grid_code", "level", "status", "priority", "source",
                     "occurred_at", "reported_at", "reporter_id", "handler_id", "building_code", "building_uuid",
                     "location_text", "lon", "lat", "description", "agreement_text", "agreement_terms",
                     "referral_target", "referral_outcome", "satisfaction"),
    })

INCIDENT_STEPS = RegisterFields(
    "incident_steps", "incident_steps", "处置记录", "Case steps", "处置记录台账", (
        f("incident_uuid", "事件标识", "Incident UUID", "ref", column="incident_id", ref="incidents", width=38,
          not_blank=True),
        f("incident_title", "事件标题", "Incident title", "info", column=None, width=20,
          exchange="事件标题（仅供查看）"),
        f("seq", "序号", "Step no.", "int", width=6, readonly=True),
        f("at", "时间", "Time", "datetime", width=19, not_blank=True),
        f("actor_id", "操作人账号", "Acting user", "user"),
        f("actor_name", "操作人姓名", "Acting user's name", width=10),
        f("action", "动作", "Action", "choice", choices=STEP_ACTIONS, width=10, not_blank=True),
        f("from_level", "原层级", "From level", "enum", enum=MediationLevel, width=8),
        f("to_level", "新层级", "To level", "enum", enum=MediationLevel, width=8),
        f("from_status", "原状态", "From status", "enum", enum=IncidentStatus, width=12),
        f("to_status", "新状态", "To status", "enum", enum=IncidentStatus, width=12),
        f("target", "对象", "Target", width=14),
        f("note", "说明", "Note", width=30),
    ), {
        "exchange": ("incident_uuid", "incident_title", "seq", "at", "actor_id", "actor_name", "action",
                     "from_level", "to_level", "from_status", "to_status", "target", "note"),
    }, versioned=False)

VISITS = RegisterFields(
    "visits", "visit_logs", "走访记录", "Visits", "走访台账", (
        f("visited_at", "走访时间", "Visited at", "datetime", width=17, not_blank=True),
        GRID_CODE_NOT_BLANK, GRID,
        f("household_no", "户号", "Household no.", "refkey", column="household_id", ref="households", width=14),
        HOUSEHOLD_UUID,
        f("resident", "走访对象", "Resident", column=None, width=10),
        f("resident_uuid", "人员UUID", "Resident UUID", "ref", column="resident_id", ref="residents", hidden=True),
        f("visitor", "走访人", "Visitor", column=None, width=10),
        f("visitor_id", "走访人账号", "Visitor's user name", "user"),
        f("kind", "走访类型", "Kind", "enum", enum=VisitKind, width=10, not_blank=True, exchange="类型"),
        f("findings", "走访发现", "Findings", width=40),
        f("follow_up", "后续跟进", "Follow-up", width=30),
        f("incident_uuid", "事件UUID", "Incident UUID", "ref", column="incident_id", ref="incidents", hidden=True),
    ), {
        "list": ("visited_at", "kind", "household_no", "resident", "visitor", "findings", "grid"),
        "export": ("visited_at", "grid_code", "household_no", "resident", "visitor", "kind", "findings",
                   "follow_up"),
        "exchange": ("visited_at", "grid_code", "household_no", "household_uuid", "resident_uuid", "visitor_id",
                     "kind", "findings", "follow_up", "incident_uuid"),
    }, aliases=("visit_logs",))

USERS = RegisterFields(
    "users", "users", "用户", "Users", "用户台账", (
        f("username", "用户名", "User name"),
        f("display_name", "姓名", "Name"),
        f("role", "角色", "Role", "enum", enum=Role),
        f("area", "管辖区域", "Area", column=None),
        f("grids", "负责网格", "Grids", column=None),
        f("active", "状态", "Status", "bool"),
        f("locked_until", "锁定至", "Locked until", "datetime"),
    ), {
        "list": ("username", "display_name", "role", "area", "grids", "active", "locked_until"),
    })

ALL: tuple[RegisterFields, ...] = (BUILDINGS, HOUSEHOLDS, RESIDENTS, PREMISES, ORGANISATIONS, INCIDENTS,
                                   INCIDENT_STEPS, VISITS, USERS)

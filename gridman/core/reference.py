"""Reference data every database starts with: tags and default time limits.

Migration 0002 inserts these; later changes to the lists need a new migration.
"""

from __future__ import annotations

# code, Chinese name, English name, category, sensitive, synonyms ('|')
TAGS: list[tuple[str, str, str, str, bool, str]] = [
    ("low_income", "低保", "Low-income (dibao)", "care", False, "低保户|低保对象|最低生活保障"),
    ("special_hardship", "特困人员", "Extreme hardship", "care", False, "特困|五保户"),
    ("disabled", "残疾人", "Disabled", "care", False, "残疾|残障"),
    ("elderly_alone", "独居老人", "Elderly living alone", "care", False, "空巢老人|孤寡老人|独居"),
    ("left_behind_child", "留守儿童", "Left-behind child", "care", False, "留守"),
    ("veteran", "退役军人", "Veteran", "care", False, "退伍军人|优抚对象"),
    ("released_prisoner", "刑释人员", "Released prisoner", "watch", True, "刑满释放人员|安置帮教|刑释解教"),
    ("community_correction", "社区矫正对象", "Community corrections", "watch", True, "社区矫正|矫正对象"),
    ("drug_user", "吸毒人员", "Drug user", "watch", True, "社区戒毒|社区康复|涉毒人员"),
    ("mental_disorder", "严重精神障碍患者", "Serious mental disorder", "watch", True, "严重精神障碍|精神病人|肇事肇祸精神病"),
    ("hiv", "艾滋病感染者", "HIV", "watch", True, "艾滋病|HIV"),
    ("key_petitioner", "重点信访人员", "Key petitioner", "watch", True, "重点上访人员|信访重点人"),
    ("card_shouxing", "寿星卡", "Longevity card (elderly)", "service_card", False, "寿星"),
    ("card_jinguo", "巾帼卡", "Jinguo card (women)", "service_card", False, "巾帼"),
    ("card_lingtong", "灵童卡", "Lingtong card (children)", "service_card", False, "灵童"),
    ("card_tequn", "特群卡", "Special-groups card", "service_card", False, "特群"),
    ("card_lianxin", "连心卡", "Lianxin card", "service_card", False, "连心"),
]

# level, category (None = default), days, working days?
DEFAULT_TIME_LIMITS: list[tuple[str, str | None, int, bool]] = [
    ("grid", None, 3, False),
    ("community", None, 7, False),
    ("street", None, 15, False),
    ("case", None, 30, False),  # people's mediation normally ends within a month
]

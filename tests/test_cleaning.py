"""Cell cleaners: what a clerk's spreadsheet really contains, normalised or refused (never guessed)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridman.core import idcard
from gridman.core.enums import PopulationType, Relation
from gridman.core.reference import TAGS
from gridman.core.services import cleaning as c

GOOD_ID = idcard.make("340104", date(1990, 1, 1), 123, "M")
GOOD_ID_X = next(idcard.make("340104", date(1985, 6, 7), s, "F") for s in range(500)
                 if idcard.make("340104", date(1985, 6, 7), s, "F").endswith("X"))


def _id_variants() -> list:
    """Valid IDs and every way one goes wrong, as a column of a real file would hold them."""
    out: list = []
    for k in range(600):
        born = date(1900, 1, 1) + timedelta(days=k * 71)
        v = idcard.make("340104", born, k % 500, "MF"[k % 2])
        out += [v, v.lower(), v[:17] + "0123456789X"[(k * 7) % 11], v[:10] + "1399" + v[14:], v[:10] + "0229" + v[14:],
                v[:6] + "1879" + v[10:], v[:6] + "2100" + v[10:], "３" + v[1:], v[:5] + "a" + v[6:], v[:17], " " + v[1:],
                v[:17] + "x", v[:16] + "²" + v[17]]
    return out + ["", None, 3.4e17, "3.40104199001011E+17", True, 1, date(2000, 1, 1)]


def test_many_citizen_ids_at_once_equal_one_by_one():
    values = _id_variants()
    got = c.clean_citizen_ids(values)
    assert got == [c.clean_citizen_id(v) for v in values]
    assert sum(1 for g in got if g.issue is None) > 1000 and sum(1 for g in got if g.issue is not None) > 3000


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="0123456789Xx", min_size=17, max_size=19), max_size=30))
def test_many_citizen_ids_property(values):
    assert c.clean_citizen_ids(values) == [c.clean_citizen_id(v) for v in values]


def test_citizen_id_normalised_and_checked():
    fw = GOOD_ID.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    assert c.clean_citizen_id(fw).value.number == GOOD_ID
    assert c.clean_citizen_id(" " + GOOD_ID_X.lower() + " ").value.number == GOOD_ID_X
    info = c.clean_citizen_id(GOOD_ID).value
    assert (info.birth_date, info.sex) == (date(1990, 1, 1), "M")
    bad_check = GOOD_ID[:17] + ("0" if GOOD_ID[17] != "0" else "1")
    assert c.clean_citizen_id(bad_check).issue.code == "id_check_digit"
    assert c.clean_citizen_id(GOOD_ID[:17]).issue.code == "id_length"
    assert c.clean_citizen_id("34010419901301123X").issue.code == "id_birth_date"
    assert c.clean_citizen_id(None) == c.EMPTY and c.clean_citizen_id("  ") == c.EMPTY


@pytest.mark.parametrize("raw", [3.40104199001011e17, float(GOOD_ID[:17]), "3.40104199001011E+17", "3.40104199001011e17"])
def test_float_id_is_corrupted_never_repaired(raw):
    res = c.clean_citizen_id(raw)
    assert res.value is None
    assert res.issue.code == "id_corrupted"
    assert "科学计数法" in res.issue.message and "Excel" in res.issue.en


@pytest.mark.parametrize("raw", ["1990-01-01", "1990/1/1", "19900101", 19900101, 19900101.0, "1990年1月1日",
                                 "1990.1.1", "1990-1-1 00:00:00", 32874, 32874.0, "32874", "１９９０－０１－０１",
                                 date(1990, 1, 1), datetime(1990, 1, 1, 8, 30), " 1990 年 1 月 1 日 "])
def test_dates_in_every_form(raw):
    assert c.clean_date(raw) == c.Clean(date(1990, 1, 1))


@pytest.mark.parametrize("raw,code", [("1990-02-30", "date_invalid"), ("abc", "date"), ("01/02/1990", "date"),
                                      ("1800-01-01", "date_range"), (True, "date")])
def test_bad_dates_reported(raw, code):
    assert c.clean_date(raw).issue.code == code


def test_future_birth_date_refused():
    assert c.clean_date("2999-01-01", not_future=True).issue.code == "date_future"


@pytest.mark.parametrize("raw,expected", [
    ("13800138000", "13800138000"), (13800138000.0, "13800138000"), ("+86 138 0013 8000", "13800138000"),
    ("0086-13800138000", "13800138000"), ("0551-62345678", "0551-62345678"), ("（0551）62345678", "055162345678"),
    ("010-12345678", "010-12345678"), ("13800138000、0551-62345678", "13800138000,0551-62345678"),
    ("0551-62345678-801", "0551-62345678-801"), ("0551-62345678转801", "0551-62345678-801"),
])
def test_phones(raw, expected):
    assert c.clean_phone(raw).value == expected


@pytest.mark.parametrize("raw", ["1380013800", "23800138000", "62345678", "phone", 1.5,
                                 "13955", "12345", "4008123123", 55162345678, "0551-02345678"])
def test_bad_phones(raw):
    assert c.clean_phone(raw).issue.code == "phone"


def test_enumerations_with_synonyms():
    assert c.clean_sex("女").value == "F" and c.clean_sex("男性").value == "M" and c.clean_sex("F").value == "F"
    assert c.clean_relation("妻").value == Relation.SPOUSE
    assert c.clean_relation("户主").value == "head" and c.clean_relation("本人").value == "head"
    assert c.clean_relation("其他").value == "other"
    assert c.clean_population_type("户籍人口").value == PopulationType.REGISTERED
    assert c.clean_population_type("流动").value == "floating"
    assert c.clean_population_type("Floating").value == "floating"
    assert c.clean_ethnicity("回").value == "回族" and c.clean_ethnicity("维吾尔族").value == "维吾尔族"
    assert len(c.ETHNICITIES) == 56 and len(set(c.ETHNICITIES)) == 56
    bad = c.clean_relation("邻居")
    assert bad.issue.code == "enum" and "与户主关系" in bad.issue.message and "户主" in bad.issue.message


def test_enum_labels_where_values_collide():
    # enums.LABELS is keyed by str-equal members; the cleaners must still get these right
    assert c.enum_label(PopulationType.REGISTERED) == "户籍人口"
    assert c.enum_label(Relation.OTHER) == "其他"
    assert c.parse_enum(PopulationType, "户籍人口") is PopulationType.REGISTERED


class _T:
    def __init__(self, i, code, name, name_en, sensitive, synonyms):
        self.id, self.code, self.name, self.name_en, self.sensitive, self.synonyms = (
            i, code, name, name_en, sensitive, synonyms)


def test_tags_by_code_name_and_synonym():
    idx = c.TagIndex(_T(i, code, n, e, s, syn) for i, (code, n, e, cat, s, syn) in enumerate(TAGS, start=1))
    got = idx.clean("低保户、残疾, elderly_alone；寿星")
    assert [t.code for t in got.value] == ["low_income", "disabled", "elderly_alone", "card_shouxing"]
    assert idx.clean("社区矫正").value[0].sensitive is True
    assert idx.clean("").value == ()
    assert idx.clean("低保、火星人").issue.code == "tag"


@pytest.mark.parametrize("header,field", [
    ("公民身份号码", "citizen_id"), ("身份证号", "citizen_id"), ("身份证号码", "citizen_id"), ("证件号码", "citizen_id"),
    ("id_card", "citizen_id"), ("ID Number", "citizen_id"), ("*公民身份号码", "citizen_id"),
    ("姓　名", "name"), ("Name", "name"), ("与户主关系", "relation_to_head"), ("Relationship", "relation_to_head"),
    ("出生日期（yyyy-mm-dd）", "birth_date"), ("ＰＨＯＮＥ", "phone"), ("户 号", "household_no"),
])
def test_header_synonyms(header, field):
    assert c.field_for_header(header) == field


def test_unknown_and_ignored_headers():
    assert c.field_for_header("鞋码") is None
    assert c.is_ignored_header("序号") and c.is_ignored_header("错误原因")


def test_required_and_text():
    assert c.clean_required_text("", label_zh="姓名", label_en="name").issue.code == "required"
    assert c.clean_text(12.0).value == "12"
    assert c.clean_text("x" * 10, max_len=5).issue.code == "too_long"
    assert c.clean_code(1001.0).value == "1001" and c.clean_code("Ｈ ００１").value == "H001"
    assert c.clean_code(3.4e17).issue.code == "code_number"


def _date_variants() -> list:
    out: list = []
    for k in range(400):
        b = date(1870, 1, 1) + timedelta(days=k * 137)
        out += [b.isoformat(), f"{b.year}/{b.month}/{b.day}", b.strftime("%Y%m%d"), f"{b.year}年{b.month}月{b.day}日",
                f"{b.year}.{b.month}.{b.day}", f"{b.year}-{b.month}-{b.day}", f" {b.isoformat()} ", f"{b.year}年{b.month}月{b.day}",
                f"{b.isoformat()}T00:00", f"{b.year}/{b.month}-{b.day}", f"{b.year}/{b.month}/{b.day + 40}",
                f"{b.year}\u00b2/{b.month}/{b.day}", b, datetime(b.year, b.month, b.day, 8, 30)]
    return out + ["1990-02-30", "19901301", "１９９０-01-01", "1990--1", "abcd-ef-gh", "32874", "32874.0", 32874, 32874.5,
                  19900101, "99999999", "1990 - 1 - 1", "2100-01-01", "", None, True, "1990年1月1日 ", "1990-1-1日"]


@pytest.mark.parametrize("not_future", [False, True])
def test_many_dates_at_once_equal_one_by_one(not_future):
    values = _date_variants()
    today = date(2026, 3, 1)
    got = c.clean_dates(values, not_future=not_future, today=today)
    assert got == [c.clean_date(v, not_future=not_future, today=today) for v in values]
    assert sum(1 for g in got if g.issue is None) > 3000 and sum(1 for g in got if g.issue is not None) > 500


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="0123456789-/.年月日 T", min_size=6, max_size=12), max_size=30))
def test_many_dates_property(values):
    today = date(2026, 3, 1)
    assert c.clean_dates(values, not_future=True, today=today) == [c.clean_date(v, not_future=True, today=today)
                                                                   for v in values]


def test_citizen_id_issues_carry_the_idcard_messages():
    issue = c.clean_citizen_id("110105194912310021").issue
    with pytest.raises(idcard.IdCardError) as ei:
        idcard.parse("110105194912310021")
    assert (issue.code, issue.message, issue.en) == ("id_check_digit", ei.value.zh, ei.value.en)
    assert "X" in issue.en  # the English message says which check digit is right (it did not before)
    assert c.clean_citizen_id(True).issue.en == "Not a citizen ID"


def test_status_cleaner_named_by_the_catalogue_label():
    bad = c.clean_status("出差")
    assert bad.issue.code == "enum" and bad.issue.message.startswith("人员状态“出差”无法识别")

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridman.core import idcard


def test_known_valid_number():
    info = idcard.parse("11010519491231002X")
    assert info.birth_date == date(1949, 12, 31) and info.sex == "F" and info.area_code == "110105"


@pytest.mark.parametrize("raw,code", [
    ("11010519491231002", "length"),
    ("1101051949123100A2", "chars"),
    ("1101051949123100\u00b2X", "chars"),  # a Unicode digit that str.isdigit() accepts
    ("110105194912310\u0663\u0662X", "chars"),
    ("110105194913310021", "birth_date"),
    ("110105194912310021", "check_digit"),
    (3.40104199001011e17, "corrupted"),
    ("3.40104199001011E+17", "corrupted"),
])
def test_refusals(raw, code):
    with pytest.raises(idcard.IdCardError) as ei:
        idcard.parse(raw)
    assert ei.value.code == code


def test_normalises_full_width_and_lower_x():
    assert idcard.parse("１１０１０５１９４９１２３１００２x").number == "11010519491231002X"


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2025, 12, 31)), st.integers(0, 499),
       st.sampled_from(["M", "F"]))
def test_make_is_valid_and_consistent(born, seq, sex):
    n = idcard.make("340104", born, seq, sex)
    info = idcard.parse(n)
    assert (info.birth_date, info.sex) == (born, sex)
    assert idcard.mask(n) == n[:4] + "*" * 14  # issue 16: the last four no longer shown


@pytest.mark.parametrize("raw,zh,en", [
    ("11010519491231002", "身份证号应为 18 位，实际 17 位", "A citizen ID has 18 characters, this one 17"),
    ("110105194912310021", "身份证号校验位错误（应为 X）", "Wrong check digit (should be X)"),
    ("110105194913310021", "身份证号中的出生日期 19491331 不存在", "The birth date 19491331 inside the ID does not exist"),
])
def test_one_set_of_messages_in_both_languages(raw, zh, en):
    with pytest.raises(idcard.IdCardError) as ei:
        idcard.parse(raw)
    assert (str(ei.value), ei.value.text("zh_CN"), ei.value.text("en")) == (zh, zh, en)


def test_every_message_has_both_languages_with_the_same_placeholders():
    import re

    for code, zh, en in idcard.MESSAGES.values():
        assert code and zh and en and not re.search(r"[\u3400-\u9fff]", en)
        assert set(re.findall(r"\{(\w+)\}", zh)) == set(re.findall(r"\{(\w+)\}", en))

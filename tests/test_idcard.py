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
    assert idcard.mask(n) == n[:4] + "*" * 10 + n[-4:]

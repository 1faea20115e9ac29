"""Enum members sharing a code with another enum's member keep their own labels."""

from __future__ import annotations

from gridman.core import enums


def test_every_member_has_its_own_label_even_when_codes_collide():
    for member, zh, en in enums._LABEL_ROWS:
        assert enums.label(member) == zh, member
        assert enums.label(member, "en") == en, member
        assert enums.label(member.value, "zh_CN", type(member)) == zh
        assert enums.parse(type(member), zh) is member


def test_every_member_of_every_enumeration_has_a_label():
    from enum import StrEnum

    for obj in vars(enums).values():
        if isinstance(obj, type) and issubclass(obj, StrEnum) and obj is not StrEnum:
            for member in obj:
                assert enums.label_pair(member) is not None, member


def test_population_type_and_incident_category_examples():
    assert enums.label("registered", "zh_CN", enums.PopulationType) == "户籍人口"
    assert enums.label(enums.IncidentCategory.OTHER) == "其他"
    assert enums.parse(enums.PopulationType, "户籍人口") is enums.PopulationType.REGISTERED

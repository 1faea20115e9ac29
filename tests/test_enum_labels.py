"""Enum members sharing a code with another enum's member keep their own labels."""

from __future__ import annotations

from gridman.core import enums


def test_every_member_has_its_own_label_even_when_codes_collide():
    import ast
    from pathlib import Path

    src = Path(enums.__file__).read_text(encoding="utf-8")
    table = next(n for n in ast.parse(src).body
                 if isinstance(n, ast.AnnAssign) and getattr(n.target, "id", "") == "LABELS").value
    for k, v in zip(table.keys, table.values, strict=True):
        member = getattr(getattr(enums, k.value.id), k.attr)
        zh, en = (e.value for e in v.elts)
        assert enums.label(member) == zh, member
        assert enums.label(member, "en") == en, member
        assert enums.label(member.value, "zh_CN", type(member)) == zh
        assert enums.parse(type(member), zh) is member


def test_population_type_and_incident_category_examples():
    assert enums.label("registered", "zh_CN", enums.PopulationType) == "户籍人口"
    assert enums.label(enums.IncidentCategory.OTHER) == "其他"
    assert enums.parse(enums.PopulationType, "户籍人口") is enums.PopulationType.REGISTERED

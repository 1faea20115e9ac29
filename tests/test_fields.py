"""The field catalogue: every declaration matches the models, labels and synonyms are
unambiguous, enumerations parse back, and every front derives its headers from it."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

import openpyxl
import pytest

from gridman.core import enums, fields
from gridman.core.enums import Role
from gridman.core.models.base import Base
from gridman.core.services import cleaning, registers
from gridman.core.services import export as ex
from gridman.core.services.exchange import workbook as exchange_book
from gridman.core.services.permissions import Actor, Perm

TABLES = {t.name: t for t in Base.metadata.sorted_tables}
ALL = [pytest.param(r, id=r.key) for r in fields.ALL]


@pytest.mark.parametrize("reg", ALL)
def test_every_field_is_a_model_column_or_declared_computed(reg):
    table = TABLES[reg.table]
    for fd in reg.fields:
        assert fd.kind in fields.KINDS, (reg.key, fd.key)
        if fd.attr is not None:
            assert fd.attr in table.c, (reg.key, fd.key, fd.attr)
        if fd.kind == "enum":
            assert fd.enum is not None and issubclass(fd.enum, StrEnum), fd.key
        if fd.kind == "choice":
            assert fd.choices, fd.key
        if fd.kind in ("ref", "refkey"):
            assert fd.ref in fields.REGISTERS and fd.attr in table.c, fd.key
        if fd.sensitive is not None:
            Perm(fd.sensitive)  # a real permission
        assert fd.width > 0
    for view in reg.views:
        assert view in fields.VIEWS
        assert reg.view(view), (reg.key, view)
    if reg.natkey is not None:
        assert reg.natkey in reg.by_key


@pytest.mark.parametrize("reg", ALL)
def test_labels_are_non_empty_and_unique_per_register(reg):
    zh = [fd.zh for fd in reg.fields]
    en = [fd.en for fd in reg.fields]
    assert all(zh) and all(en) and reg.zh and reg.en and reg.ledger
    assert len(set(zh)) == len(zh), sorted(z for z in zh if zh.count(z) > 1)
    assert len(set(en)) == len(en), sorted(e for e in en if en.count(e) > 1)
    headers = [fd.exchange_header for fd in reg.view("exchange")]
    assert len(set(headers)) == len(headers)


def test_one_name_per_register_and_aliases():
    assert fields.get("visit_logs") is fields.get("visits") and fields.resolve("visits") == "visits"
    assert fields.get("people").key == "residents" and fields.resolve("cats") is None
    assert not set(fields.ALIASES) & set(fields.REGISTERS)
    assert ex.list_spec("visit_logs").name == "visits"
    assert fields.register_name("visit_logs") == "走访记录" and fields.register_name("visits", "en") == "Visits"
    with pytest.raises(KeyError):
        fields.get("cats")


def test_sensitive_fields():
    res = fields.get("residents")
    assert res.field("citizen_id").sensitive == Perm.VIEW_ID_NUMBER.value
    assert res.field("tags").sensitive == Perm.VIEW_SENSITIVE_TAGS.value
    assert res.field("citizen_id").zh == "公民身份号码"


def _enums_in_use() -> set[type[StrEnum]]:
    return {fd.enum for r in fields.ALL for fd in r.fields if fd.enum is not None} | set(enums.SYNONYMS)


@pytest.mark.parametrize("enum", sorted(_enums_in_use(), key=lambda e: e.__name__))
def test_every_enum_label_and_synonym_parses_back_to_its_code(enum):
    for m in enum:
        zh, en = enums.label_pair(m)
        for text in (m.value, zh, en, f" {zh} ", en.upper(), m.value.upper()):
            assert enums.parse(enum, text) is m, (m, text)
        # full-width forms are the same text
        assert enums.parse(enum, en.translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)})) is m
    seen: dict[str, str] = {}
    for m in enum:
        zh, en = enums.label_pair(m)
        for text in {m.value, zh, en}:
            k = enums.text_key(text)
            assert seen.setdefault(k, m.value) == m.value, (enum, text)  # labels of two members never collide
    for text, code in enums.SYNONYMS.get(enum, {}).items():
        assert enums.parse(enum, text).value == code
        assert seen.setdefault(enums.text_key(text), code) == code, (enum, text)


def test_synonyms_parse_everywhere_the_same():
    """Census cleaners, the exchange and export filters share one table (these failed before in
    one front or another: full-width codes, synonyms outside the census import)."""
    assert enums.parse(enums.Sex, "男性") is enums.Sex.MALE
    assert enums.parse(enums.PopulationType, "ｆｌｏａｔｉｎｇ") is enums.PopulationType.FLOATING
    assert exchange_book.parse_enum(enums.Relation, "妻") is enums.Relation.SPOUSE
    assert cleaning.clean_relation("Ｓｐｏｕｓｅ").value == "spouse"
    with pytest.raises(ValueError):
        enums.parse(enums.Sex, "男人")


def test_import_synonyms_do_not_collide_across_fields():
    for reg in fields.ALL:
        for view in ("census", "export", "list"):
            owner: dict[str, str] = {}
            fds = reg.view(view)
            for fd in fds:
                names = (fd.zh, fd.en) + (fd.synonyms if view == "census" else ())
                for name in names:
                    k = cleaning.header_key(name)
                    assert owner.setdefault(k, fd.key) == fd.key, (reg.key, view, name, owner[k], fd.key)
    for fd in fields.get("residents").view("census"):
        for name in (fd.zh, fd.en, *fd.synonyms):
            assert cleaning.field_for_header(name) == fd.key, name


def test_each_register_page_selects_its_columns_in_the_catalogues_order():
    """The headers come from the catalogue's "list" view, the values from each register's SELECT:
    a reordered view would put every header over another column's values (the residents' tags are
    added after the query; the incident number is labelled ``no`` beside the row id)."""
    admin = Actor(None, "admin", "admin", Role.ADMIN)
    for kind in registers.KINDS:
        q, _sort, _default = registers._query(None, admin, kind, registers.Filters(), date.today())
        selected = [c.name for c in q.selected_columns[1:]]
        keys = [c.key for c in registers.COLUMNS[kind]]
        expected = {"residents": keys[:-1], "incidents": ["no", *keys[1:]]}.get(kind, keys)
        assert selected == expected, kind


def test_every_front_uses_the_catalogue_headers(tmp_path):
    for reg in fields.with_view("list"):
        assert [(c.key, c.zh, c.en) for c in registers.COLUMNS[reg.key]] == [(f.key, f.zh, f.en) for f in reg.view("list")]
    assert list(ex.LISTS) == [r.key for r in fields.with_view("export")]
    for name, spec in ex.LISTS.items():
        cat = fields.get(name).view("export")
        assert [c.header for c in spec.cols] == [f.zh for f in cat] and spec.title == fields.get(name).ledger
        wb = openpyxl.load_workbook(ex.write_template(name, tmp_path / f"{name}.xlsx"))
        assert [c.value for c in wb.worksheets[0][1]] == [f.zh for f in cat]
    assert [r.key for r in exchange_book.REGISTERS] == [r.table for r in fields.with_view("exchange")]
    for reg in fields.with_view("exchange"):
        book = exchange_book.BY_KEY[reg.table]
        assert book.sheet == reg.zh
        assert [c.header for c in book.cols] == [f.exchange_header for f in reg.view("exchange")]
    census = fields.get("residents").view("census")
    assert cleaning.FIELD_LABELS == {f.key: (f.zh, f.en) for f in census}
    assert list(cleaning.HEADER_SYNONYMS) == [f.key for f in census]


def test_registers_and_export_agree_on_the_citizen_id_header():
    """The ID column was 身份证号 in the register pages and 公民身份号码 in exports."""
    page = {c.key: c.zh for c in registers.COLUMNS["residents"]}
    export = {c.key: c.header for c in ex.LISTS["residents"].cols}
    assert page["citizen_id"] == export["citizen_id"] == "公民身份号码"
    book = {c.field: c.header for c in exchange_book.BY_KEY["residents"].cols}
    assert book["citizen_id"] == "公民身份号码"


def test_choice_labels_in_both_languages():
    kind = fields.get("households").field("kind")
    assert kind.choice_label("family") == "家庭户" and kind.choice_label("family", "en") == "Family household"
    action = fields.get("incident_steps").field("action")
    assert all(action.choice_label(c, "en") != action.choice_label(c) for c in fields.STEP_ACTIONS)

"""The five seed cables, each in a different format, parse to the metadata pinned in issue #2."""

from __future__ import annotations

from datetime import datetime

import pytest

from qa.cables import detect_format, parse_cable
from tests.conftest import SEEDS

SEED_TABLE = [
    # file prefix, id, created, classification, tags, subject starts, signer, labels
    ("000", "06ALMATY2399", datetime(2006, 7, 7, 1, 7), "UNCLASSIFIED (SENSITIVE)", "PTER KAWC PINR PREL KZ",
     "KAZAKHSTAN: DISCUSSIONS ON GUANTANAMO", "ORDWAY", [str(i) for i in range(1, 7)]),
    ("001", "05ALMATY342", datetime(2005, 1, 31, 8, 10), "UNCLASSIFIED//FOR OFFICIAL USE ONLY", "PHUM PREL EAID KZ",
     "AMBASSADOR'S MEETINGS WITH PRESIDENTIAL", "ASQUINO", [str(i) for i in range(1, 9)]),
    ("002", "05ALMATY2503", datetime(2005, 7, 6, 12, 8), "UNCLASSIFIED//FOR OFFICIAL USE ONLY",
     "PGOV PREL KDEM PHUM PINR SMIG IO UZ KZ", "DETAINED UZBEK REFUGEE FACING DEPORTATION", "ORDWAY",
     [str(i) for i in range(1, 12)]),
    ("003", "ALMATY2058", None, "UNCLASSIFIED (SENSITIVE)", "PGOV PHUM FAID KZ",
     "KAZAKHSTAN: WORRISOME NATIONAL SECURITY, NGO LEGISLATION MOVING FORWARD", "ASQUINO",
     ["11", "12", "13", "14", "14 (2nd)", "15", "16", "17", "18"]),  # the cable numbers two paragraphs 14
    ("004", "05ALMATY2985", datetime(2005, 8, 18, 13, 6), "CONFIDENTIAL", "", None, None,
     [str(i) for i in range(1, 16)]),
]


def seed_text(prefix: str) -> tuple[str, str]:
    path = next(SEEDS.glob(f"{prefix}_*.txt"))
    return path.read_text(encoding="utf-8"), str(path)


@pytest.mark.parametrize("prefix,cable_id,created,classification,tags,subject,signer,labels", SEED_TABLE,
                         ids=[row[0] for row in SEED_TABLE])
def test_seed_metadata(prefix, cable_id, created, classification, tags, subject, signer, labels):
    text, source = seed_text(prefix)
    cable = parse_cable(text, source)
    assert cable.id == cable_id
    assert cable.created == created
    assert cable.classification == classification
    assert set(tags.split()) <= set(cable.tags)
    if subject is None:
        assert cable.subject is None
    else:
        assert cable.subject.startswith(subject)
    assert cable.signer == signer
    assert [p.label for p in cable.paragraphs] == labels
    assert cable.source == source


def test_each_seed_is_a_different_format():
    formats = [detect_format(seed_text(row[0])[0]) for row in SEED_TABLE]
    assert formats == ["telegram", "key-value", "key-value", "telegram", "mirror"]


def test_raw_telegram_origin_and_references():
    cable = parse_cable(*seed_text("000"))
    assert cable.origin == "Embassy Almaty"
    assert cable.references == ("ALMATY1946",)
    # the page break inside paragraph 6 is mended: one paragraph, one sentence across the break
    assert "did not bring up the creation of an MLAT during the meeting." in cable.paragraphs[5].text


def test_header_lines_are_not_paragraphs():
    for row in SEED_TABLE:
        cable = parse_cable(*seed_text(row[0]))
        for paragraph in cable.paragraphs:
            for marker in ("SIPDIS", "E.O. 12958", "TAGS:", "SUBJECT:", "REF:", "Classified By", "NNNN"):
                assert marker not in paragraph.text, (row[0], paragraph.label, marker)


def test_markings_and_hard_wraps():
    cable = parse_cable(*seed_text("001"))
    first = cable.paragraphs[0]
    assert first.marking == "SBU"
    assert first.text.startswith("Summary: During separate meetings on January 25 with Head of Presidential")
    assert "\n" not in first.text and "  " not in first.text


def test_one_line_markdown_body_is_split_with_headings():
    cable = parse_cable(*seed_text("002"))
    assert cable.paragraphs[1].heading == "BACKGROUND AND TIMELINE"
    assert cable.paragraphs[0].text.endswith("END SUMMARY.")
    assert cable.paragraphs[-1].text == "Minimize for Dushanbe considered."


def test_markdown_tags_and_unknown_year():
    cable = parse_cable(*seed_text("003"))
    assert cable.created is None and cable.year is None
    assert cable.references == ("ALMATY1854", "ALMATY1838", "STATE92206")
    assert cable.paragraphs[2].heading == "National Security Amendments to Face Senate Vote"


def test_mirror_page_repairs():
    cable = parse_cable(*seed_text("004"))
    assert cable.origin == "US Office Almaty"
    texts = " ".join(p.text for p in cable.paragraphs)
    assert "nomination or election of any candidate" in texts  # 'elec' / 'tion' split across lines
    assert "In several cities, the management of venues" in texts  # page break inside paragraph 4
    assert "Disclaimer" not in texts and "privacy" not in texts
    assert cable.paragraphs[12].heading == "Possible Travel to U.S."

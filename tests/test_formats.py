"""Every source format the parser recognises: CSV dump, JSONL export, Cablegate HTML, generic HTML, repairs."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from qa.cables import detect_format, parse_cable, parse_cables
from qa.errors import ParseError
from qa.formats.dumps import cable_from_json
from qa.records import REDACTION_MARK, Cable
from tests.conftest import DATA, SEEDS

TELEGRAM = """UNCLAS PARIS 000104

SIPDIS

E.O. 12958: N/A
TAGS: PREL FR
SUBJECT: FRANCE: TEST CABLE

REF: A. 05 PARIS 8729 B. STATE 12345

1. (U) Summary: The French government met XXXXXXXXXXXX on Monday
and agreed to discuss the matter. End summary.

2. (SBU) The second paragraph talks about
fisheries and quotas.

-- first bullet
-- second bullet

SMITH
"""


def test_csv_dump_rows_become_cables():
    path = DATA / "cables.csv"
    cables = list(parse_cables(path.read_text(encoding="utf-8"), str(path)))
    assert [c.id for c in cables] == ["66BUENOSAIRES2481", "05ANKARA1730"]
    old, ankara = cables
    assert old.created == datetime(1966, 12, 28, 18, 48)
    assert old.origin == "Embassy Buenos Aires" and old.signer == "MARTIN"
    assert [p.label for p in old.paragraphs] == ["1", "2"]
    assert 'DOWN FROM "RECORD" LEVELS' in old.paragraphs[0].text  # backslash-escaped quotes
    assert ankara.classification == "CONFIDENTIAL" and ankara.tags == ("PREL", "PGOV", "TU")
    assert ankara.references == ("05ANKARA1074",)  # the column and the REF line name the same cable once
    assert 'the "nuclear" option of early elections' in ankara.paragraphs[1].text
    assert ankara.source.endswith("cables.csv#row2")


def test_csv_wrong_column_count_is_reported_and_other_rows_kept():
    text = (DATA / "cables.csv").read_text(encoding="utf-8") + '"3","1/1/2005 1:00","05X1"\n'
    results = list(parse_cables(text, "dump.csv"))
    errors = [r for r in results if isinstance(r, ParseError)]
    assert len([r for r in results if isinstance(r, Cable)]) == 2
    assert len(errors) == 1 and "dump.csv: row 3: expected 8 columns" in str(errors[0])


def test_jsonl_export_round_trip():
    cable = parse_cable(next(SEEDS.glob("000_*")).read_text(encoding="utf-8"), "seed")
    line = json.dumps(cable.to_json())
    assert detect_format(line) == "jsonl"
    [back] = list(parse_cables(line + "\n", "export.jsonl"))
    assert back == cable
    assert cable_from_json(json.loads(line), None) == cable


def test_cablegate_html_fixture():
    path = DATA / "04RANGOON88.html"
    cable = parse_cable(path.read_text(encoding="utf-8"), str(path))
    assert detect_format(path.read_text(encoding="utf-8")) == "cablegate-html"
    assert (cable.id, cable.origin, cable.classification) == ("04RANGOON88", "Embassy Rangoon", "SECRET//NOFORN")
    assert cable.created == datetime(2004, 1, 20, 9, 9)
    assert cable.subject == "BURMA: RUMORS OF CONSTRUCTION OF A NUCLEAR REACTOR NEAR MINBU"
    assert cable.references == ("STATE297614", "03RANGOON1427")
    assert cable.signer == "MARTINEZ"
    assert [(p.label, p.marking) for p in cable.paragraphs] == [("1", "S/NF"), ("2", "S/NF")]
    assert f"businessman {REDACTION_MARK} recently" in cable.paragraphs[0].text  # glued redaction run
    assert "“massive”" in cable.paragraphs[0].text  # entities decoded


def test_whole_shared_corpus_parses(shared_corpus):
    files = sorted(shared_corpus.glob("*.html"))
    assert len(files) == 880
    paragraphs = 0
    for path in files:
        cable = parse_cable(path.read_text(encoding="utf-8"), str(path))
        assert cable.id == path.stem
        assert cable.created is not None and cable.origin
        paragraphs += len(cable.paragraphs)
        labels = [p.label for p in cable.paragraphs]
        assert len(set(labels)) == len(labels), (path.name, labels)  # a citation names one paragraph
        for paragraph in cable.paragraphs:
            assert not paragraph.text.startswith(("TAGS", "SUBJECT:", "E.O. 12958")), (path.name, paragraph.label)
    assert paragraphs > 9000


def _numbered(*blocks: str) -> str:
    return "CONFIDENTIAL BERLIN 001271\n\nSUBJECT: TALKS\n\n" + "\n\n".join(blocks) + "\n"


def test_a_date_marked_as_a_paragraph_is_folded_back():
    """Cablegate pages put a ¶ anchor on "5." when a line break falls after "October"; 2, 5, 3 reads 2, 3."""
    cable = parse_cable(_numbered("¶1. (C) Summary: talks began.", "¶2. (C) Negotiations began on October\n"
                                  "¶5.  FDP strategist shared details.", "¶3. (C) Source said more.",
                                  "¶4. (C) Comment: none."))
    assert [p.label for p in cable.paragraphs] == ["1", "2", "3", "4"]
    assert cable.paragraphs[1].text == "Negotiations began on October 5. FDP strategist shared details."


@pytest.mark.parametrize("numbers,labels", [
    (["1", "2", "1", "2"], ["1", "2", "1 (2nd)", "2 (2nd)"]),
    (["1", "2", "5", "6"], ["1", "2", "5", "6"]),
    (["1", "2", "7"], ["1", "2", "7"]),
])
def test_numbering_that_restarts_or_skips_is_kept(numbers, labels):
    """Only a number between two in-sequence neighbours is folded: restarts, gaps and a last odd one stay (a
    number given again is cited with its ordinal, so each citation names one paragraph)."""
    cable = parse_cable(_numbered(*(f"¶{n}. Paragraph {n} text." for n in numbers)))
    assert [p.label for p in cable.paragraphs] == labels
    assert [p.text for p in cable.paragraphs] == [f"Paragraph {n} text." for n in numbers]


def test_a_number_given_three_times_gets_ordinals():
    cable = parse_cable(_numbered("¶1. (C) One.", "¶2. (C) Two.", "¶2. (C) Again.", "¶2. (C) Thrice.", "¶3. (C) End."))
    assert [p.label for p in cable.paragraphs] == ["1", "2", "2 (2nd)", "2 (3rd)", "3"]


def test_an_out_of_sequence_number_with_a_marking_is_a_paragraph():
    """A classification marking says the writer started a paragraph there (a numbering slip, not a date)."""
    cable = parse_cable(_numbered("¶1. (C) One.", "¶2. (C) Two.", "¶5. (C) Five.", "¶3. (C) Three."))
    assert [p.label for p in cable.paragraphs] == ["1", "2", "5", "3"]


def test_false_numbers_in_the_shared_corpus_are_folded(shared_corpus):
    path = shared_corpus / "09BERLIN1271.html"
    cable = parse_cable(path.read_text(encoding="utf-8"), str(path))
    assert [p.label for p in cable.paragraphs] == [str(n) for n in range(1, 11)]
    assert "began on October 5. FDP strategist shared" in cable.paragraphs[1].text


def test_plain_telegram_header_references_and_bullets():
    cable = parse_cable(TELEGRAM, "t.txt")
    assert cable.id == "PARIS104" and cable.classification == "UNCLASSIFIED"
    assert cable.references == ("05PARIS8729", "STATE12345")
    assert cable.signer == "SMITH"
    first, second = cable.paragraphs
    assert REDACTION_MARK in first.text and "XXXX" not in first.text
    assert second.text == "The second paragraph talks about fisheries and quotas.\n-- first bullet\n-- second bullet"


def test_unnumbered_body_gets_stable_labels():
    text = ("CONFIDENTIAL MADRID 000555\n\nSUBJECT: NOTE\n\nThe ambassador met the minister.\n\n"
            "They discussed fishing.\n")
    cable = parse_cable(text)
    assert [p.label for p in cable.paragraphs] == ["p1", "p2"]
    assert parse_cable(text) == cable


def test_generic_html_copy_is_read_as_text():
    page = "<html><body><script>alert(1)</script><p>" + TELEGRAM.replace("\n", "<br>") + "</p></body></html>"
    assert detect_format(page) == "html"
    cable = parse_cable(page, "page.html")
    assert cable.id == "PARIS104" and len(cable.paragraphs) == 2
    assert "alert" not in " ".join(p.text for p in cable.paragraphs)


def test_text_without_a_cable_is_a_parse_error():
    with pytest.raises(ParseError, match="no cable identifier"):
        parse_cable("Just some notes about lunch.\nNothing else here.", "notes.txt")


def test_page_marks_are_page_furniture_not_text():
    """"KABUL 00004150 002 OF 003" heads each printed page; inside a paragraph it is dropped and the text joined."""
    cable = parse_cable(_numbered("¶1. (C) The talks began on Monday and\nBERLIN 00001271 002 OF 003\n"
                                  "went on late into the night.", "¶2. (C) Two."))
    assert cable.paragraphs[0].text == "The talks began on Monday and went on late into the night."


def test_section_titles_underlined_with_spaced_dashes_head_the_next_paragraph():
    """"Title / - - - -" (and "------- Title -------") is the next paragraph's heading, not the end of the last."""
    cable = parse_cable(_numbered("¶1. (C) One. End Summary.\nOrtega's Faltering Economy\n- - - - - - - -",
                                  "¶2. (C) Two.", "------- Comment -------", "¶3. (C) Three."))
    assert [(p.label, p.heading, p.text) for p in cable.paragraphs] == [
        ("1", None, "One. End Summary."), ("2", "Ortega's Faltering Economy", "Two."), ("3", "Comment", "Three.")]


def test_a_title_wrapped_before_a_lowercase_word_is_one_heading(shared_corpus):
    path = shared_corpus / "08BAGHDAD357.html"
    cable = parse_cable(path.read_text(encoding="utf-8"), str(path))
    seventh = next(p for p in cable.paragraphs if p.label == "7")
    assert seventh.heading == "Kennedy Recommendation 8 - Revisions to the Embassy Rules For the Use of Force"
    assert cable.paragraphs[5].text.endswith("through the use of DS TDY personnel.")  # ¶6 keeps only its own text


def test_a_title_wrapped_over_two_lines_is_one_heading():
    cable = parse_cable(_numbered("¶1. (C) One.\n-----------\nRecommendation 2 - Discussions with GOI on\n"
                                  "New Regulatory Framework\n-----------", "¶2. (C) Two."))
    assert [(p.heading, p.text) for p in cable.paragraphs] == [
        (None, "One."), ("Recommendation 2 - Discussions with GOI on New Regulatory Framework", "Two.")]


@pytest.mark.parametrize("header", [
    "Classfied By: Charge Richard Miles, reasons 1.4 (b) and (d).",  # misspelt in the cable
    "Declassify on: Source marked 25X1-human, Date of source: June\n27, 2009",
    "REF: LJUBLJANA 20 Classified By: DCM Robert Silverman for reasons\n1.4 (b) and (d).",
])
def test_classification_authority_lines_are_header_not_a_paragraph(header):
    text = f"CONFIDENTIAL STOCKHOLM 000051\n\nSUBJECT: TALKS\n\n{header}\n\n¶1. (C) One.\n\n¶2. (C) Two.\n"
    cable = parse_cable(text)
    assert [p.label for p in cable.paragraphs] == ["1", "2"]
    if header.startswith("REF"):
        assert cable.references == ("LJUBLJANA20",)


def test_a_table_closed_by_a_rule_stays_in_its_paragraph():
    """"Dec 708 / -----" is the last row of a table, not a title: it stays with the table's paragraph."""
    cable = parse_cable(_numbered("¶1. (C) Killings by month:\nNov 843\nDec 708\n---------------\n*Source: SEDENA",
                                  "-----------\nSpike at the Border\n-----------\n¶2. (C) Two.",
                                  "¶3. (C) Table:\nOther 9 (2.9) Unavailable\n-----------\nTotal 315 522",
                                  "¶4. (C) Four.\nUNSC Resolution 1701\n-----------", "¶5. (C) Five."))
    assert [(p.heading, p.text) for p in cable.paragraphs] == [
        (None, "Killings by month: Nov 843 Dec 708 *Source: SEDENA"), ("Spike at the Border", "Two."),
        (None, "Table: Other 9 (2.9) Unavailable Total 315 522"), (None, "Four."), ("UNSC Resolution 1701", "Five.")]


def test_a_subject_wrapped_in_mixed_case_is_one_subject_and_its_refs_are_references():
    """"SUBJECT: Egypt: Tax Reform ... Lowered / Expectations / REF: 10 CAIRO 26" is header, not two paragraphs."""
    text = ("UNCLAS CAIRO 000219\n\nSUBJECT: Egypt: Tax Reform Continues As Revenues Meet Lowered\nExpectations\n\n"
            "REF: 10 CAIRO 26\n\n¶1. (SBU) One.\n\n¶2. (SBU) Two.\n")
    cable = parse_cable(text)
    assert cable.subject == "Egypt: Tax Reform Continues As Revenues Meet Lowered Expectations"
    assert cable.references == ("10CAIRO26",)
    assert [p.label for p in cable.paragraphs] == ["1", "2"]


def test_a_page_mark_in_the_header_is_neither_subject_nor_reference():
    """The second page's "KABUL 00000503 002 OF 002" is not a reference of the cable to itself."""
    text = ("CONFIDENTIAL KABUL 000503\n\nSUBJECT: MULLAH ZAEEF: PEACE NOW A NECESSITY\nKABUL 00000503 001.2 OF 002\n\n"
            "REF: A. KABUL 484\nB. KABUL 441\nKABUL 00000503 002 OF 002\n\n¶1. (C) One.\n")
    cable = parse_cable(text)
    assert cable.subject == "MULLAH ZAEEF: PEACE NOW A NECESSITY"
    assert cable.references == ("KABUL484", "KABUL441")

"""Small pure pieces: follow-up queries, sentence splitting, embedding windows, safe rendering."""

from __future__ import annotations

import numpy as np

from embeddings.model import pool_windows, windows
from qa.answer import retrieval_query
from qa.records import Cable, Paragraph
from qa.text import sentences
from qa.webui import cable_html, md_text


def test_follow_up_questions_carry_the_previous_question():
    history = ["Why was Shamsudinov detained in Almaty?"]
    assert retrieval_query("What did UNHCR do about him?", history).startswith(history[0])
    assert retrieval_query("And the prosecutor?", history).startswith(history[0])
    standalone = "Which Kazakh official refused guarantees about Guantanamo detainees in 2006?"
    assert retrieval_query(standalone, history) == standalone
    assert retrieval_query("What did UNHCR do about him?", []) == "What did UNHCR do about him?"


def test_sentences_keep_abbreviations_and_initials():
    text = 'Poloff met Ualikhan S. Sanginkhanov of the MFA. The U.S. side said "no." Then talks ended.'
    assert sentences(text) == ["Poloff met Ualikhan S. Sanginkhanov of the MFA.", 'The U.S. side said "no."',
                               "Then talks ended."]


def test_long_text_is_embedded_as_one_vector_from_overlapping_windows():
    text = " ".join(f"w{i}" for i in range(400))
    parts = windows(text)
    assert len(parts) > 1 and parts[0].split()[-1] in parts[1].split()  # overlap
    assert " ".join(parts).split()[-1] == "w399"  # nothing lost at the end
    calls = []

    def encode(pieces):
        calls.append(len(pieces))
        return np.eye(len(pieces), 4, dtype=np.float32)

    vectors = pool_windows(["short text", text], encode)
    assert vectors.shape == (2, 4) and calls == [1 + len(parts)]
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)


def test_untrusted_text_is_rendered_literally():
    assert md_text("<script>x</script> **b** [l](javascript:y)") == (
        "&lt;script&gt;x&lt;/script&gt; \\*\\*b\\*\\* \\[l\\]\\(javascript:y\\)")
    cable = Cable(id="X1", subject="<b>S</b>", paragraphs=(Paragraph("1", "<img src=x onerror=alert(1)>"),))
    page = cable_html(cable, {"1"}, focus="1")
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "para cited focus" in page and "&lt;b&gt;S&lt;/b&gt;" in page


def test_bookkeeping_sentences_are_not_statements():
    from qa.answer import is_statement

    for sentence in ("End summary.", "End Comment.", "See para 6 for action request.", "(End note.)", "Yes."):
        assert not is_statement(sentence), sentence
    assert is_statement("The GOK could not take custody of the detainees.")

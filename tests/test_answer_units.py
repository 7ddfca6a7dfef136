"""Small pure pieces: follow-up queries, sentence splitting, embedding windows, safe rendering."""

from __future__ import annotations

import numpy as np

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


def test_long_text_is_windowed_without_loss_and_spans_pool_their_own_tokens():
    from embeddings.passages import Tokens, embed_passages, windows

    ids = list(range(1000, 1300))  # 300 word pieces, piece i at characters [2i, 2i+1)
    tokens = Tokens(ids, [(2 * i, 2 * i + 1) for i in range(300)])
    cut = windows(tokens, ([1], [2]), width=128)
    assert len(cut) == 3 and all(len(w) <= 128 and w[0] == 1 and w[-1] == 2 for w in cut)
    assert [t for w in cut for t in w[1:-1]] == ids  # every piece once, in order

    def run(batch):  # a token's state: (is a special token, its id, 1)
        return [np.array([[float(t < 1000), float(t), 1.0] for t in w]) for w in batch]

    short = Tokens([1000, 1001], [(0, 1), (2, 3)])
    passages = embed_passages([tokens, short], [[(0, 20), (590, 600)], []], run, ([1], [2]), width=128)
    assert [p.spans.shape for p in passages] == [(2, 3), (0, 3)]
    first = np.array([0.0, np.mean(ids[:10]), 1.0])  # pieces 0-9 start inside characters [0, 20)
    assert np.allclose(passages[0].spans[0], first / np.linalg.norm(first))
    assert np.allclose(np.linalg.norm([p.vector for p in passages], axis=1), 1.0)
    windows_mean = np.mean([v / np.linalg.norm(v) for v in (s.mean(axis=0) for s in run(cut))], axis=0)
    assert np.allclose(passages[0].vector, windows_mean / np.linalg.norm(windows_mean))


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


def _counting(embedder) -> list[int]:
    """Record how many texts each `embed` call of this embedder is given."""
    calls: list[int] = []
    inner = embedder.embed

    def embed(texts):
        calls.append(len(texts))
        return inner(texts)

    embedder.embed = embed
    return calls


def test_answers_score_sentences_from_their_stored_vectors_and_embed_only_question_and_best(fake_library):
    from tests.conftest import SEEDS

    fake_library.ingest([SEEDS])
    question = "What guarantees did Kazakhstan refuse to give about Guantanamo detainees?"
    hits = fake_library.search(question, k=8)
    statements = sum(1 for hit in hits for s in sentences(hit.text) if len(s.split()) > 3)
    calls = _counting(fake_library.embedder)
    answer = fake_library.ask(question)
    assert answer.answered and statements > 10
    assert sum(calls) <= 4  # search's query, the question, and the best sentence with the question: no candidates
    stored = [(s.text, s.citation) for s in answer.statements]

    fake_library.store.db.execute("UPDATE paragraphs SET sentence_vectors = NULL")  # a store from before them
    fake_library.store.db.commit()
    calls.clear()
    again = fake_library.ask(question)
    assert again.answered and sum(calls) > 10  # every candidate sentence embedded instead
    cited = {hit.citation: hit.text for hit in again.hits}
    assert all(s.text in cited[s.citation] for s in again.statements)
    assert stored and all(text in {h.citation: h.text for h in answer.hits}[c] for text, c in stored)

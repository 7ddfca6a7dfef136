"""Retrieval behaviour on the real store and FAISS index (fake embedder): filters, ids, glossary, fusion."""

from __future__ import annotations

import numpy as np
import pytest

from qa import glossary
from qa.errors import QueryError
from qa.filters import Filters
from qa.search import Searcher, SearchSettings
from tests.conftest import DATA, SEEDS


@pytest.fixture
def library(fake_library):
    fake_library.ingest([SEEDS, DATA / "cables.csv", DATA / "04RANGOON88.html"])
    return fake_library


@pytest.fixture(params=["sql", "memory"])
def either_filters(library, request):
    """The library with filters run in SQL, or from the in-memory filter index (each filter test runs both)."""
    if request.param == "memory":
        library.store.keep_filter_index(wait=True)
        assert library.store._filter_index() is not None
    return library


def test_keyword_side_finds_exact_names(library):
    hits = library.search("Shamsudinov UNHCR refugee certificate", k=3, mode="bm25")
    assert hits[0].cable_id == "05ALMATY2503"


def test_filters_apply_inside_the_search_not_after_it(either_filters):
    library = either_filters
    query = "Guantanamo detainees guarantees"
    unfiltered = [h.cable_id for h in library.search(query, k=60)]
    # the only 1966 cable is far down (or absent) in the global ranking...
    assert "66BUENOSAIRES2481" not in unfiltered[:5]
    for mode in ("hybrid", "bm25", "dense"):
        hits = library.search(query, k=5, filters=Filters.make(year=1966), mode=mode)
        if mode == "bm25":
            assert hits == []  # no 1966 paragraph shares a word with the query
        else:
            # ...but a filtered search still returns the best matches among the matching paragraphs
            assert [h.cable_id for h in hits] == ["66BUENOSAIRES2481", "66BUENOSAIRES2481"]


@pytest.mark.parametrize("filters,expected", [
    (Filters.make(origin="embassy ankara"), {"05ANKARA1730"}),
    (Filters.make(tag="PTER"), {"06ALMATY2399"}),
    (Filters.make(classification="secret"), {"04RANGOON88"}),
    (Filters.make(date_from="2005-07-01", date_to="2005-08-18"), {"05ALMATY2503", "05ALMATY2985"}),
    (Filters.make(year=2005, origin="Almaty"), {"05ALMATY342", "05ALMATY2503", "05ALMATY2985"}),
])
def test_each_filter(either_filters, filters, expected):
    library = either_filters
    hits = library.search("government", k=100, filters=filters)
    assert {h.cable_id for h in hits} == expected


def test_unknown_filter_value_gives_no_hits_and_bad_values_are_errors(either_filters):
    library = either_filters
    assert library.search("detainees", filters=Filters.make(origin="Atlantis")) == []
    with pytest.raises(QueryError, match="YYYY-MM-DD"):
        Filters.make(date_from="last year")
    with pytest.raises(QueryError, match="unknown filter"):
        Filters.from_dict({"country": "France"})


def test_a_query_naming_a_cable_finds_it_first(library):
    assert {h.cable_id for h in library.search("05ALMATY342", k=8)} == {"05ALMATY342"}
    assert [h.paragraph for h in library.search("05ALMATY342", k=3)] == ["1", "2", "3"]
    hits = library.search("what did ALMATY 2058 say about the Mazhilis", k=3)
    assert hits[0].cable_id == "ALMATY2058"
    assert library.search("Ankara 1730 drift", k=1)[0].cable_id == "05ANKARA1730"


def test_glossary_expands_abbreviations():
    assert glossary.lookup("gok") == "government of kazakhstan kenya kuwait"
    assert "government" in glossary.expansion_terms("What did the GOK say?")
    assert "deputy chief of mission" in glossary.expand_for_embedding("DCM views")
    assert glossary.expansions("the dcm said") == []  # only abbreviations written as such
    assert ("REFTEL", "referenced telegram") in glossary.search("reftel")


def test_fts_syntax_in_queries_is_inert(library):
    for query in ['"unbalanced', "NEAR(", "OR AND NOT", "* detainees", "x' OR 1=1 --", "detainees)"]:
        library.search(query, k=5)  # no exception, no injection
    with pytest.raises(QueryError, match="no words"):
        library.search("*")
    with pytest.raises(QueryError):
        library.search("   \x00\x07  ")
    with pytest.raises(QueryError):
        library.search("detainees", k=0)


def test_zscore_fusion_ranks_the_exact_paragraph_high_and_rrf_runs(library):
    # the fake dense side is noise, so both sides get equal weight here (the default trusts the real model's side
    # more) and "high" is top 3; the real model puts it first (test_retrieval_real)
    for fusion in ("zscore", "rrf"):
        settings = SearchSettings(fusion=fusion, dense_weight=0.5)
        searcher = Searcher(library.store, library.index, library.embedder, settings)
        hits = searcher.search("Tuyakbay Weaver consultant letter", k=3)
        assert len(hits) == 3
        if fusion == "zscore":
            assert "05ALMATY2985 ¶14" in [h.citation for h in hits]


def test_every_candidate_gets_its_exact_bm25_not_zero(library):
    query = "Sanginkhanov guarantees terrorist"
    searcher = Searcher(library.store, library.index, library.embedder, SearchSettings(candidates=2))
    top = dict(library.store.keyword_search(searcher._match(query), Filters(), 1000))
    assert len(top) > 3
    ranked = searcher.rank(query, k=50)
    beyond = [r for r in ranked if r.paragraph_id in top and r.paragraph_id not in dict(
        library.store.keyword_search(searcher._match(query), Filters(), 2))]
    # candidates the keyword side did not bring (it kept only 2) still carry the score they have in the full list
    assert beyond
    for r in ranked:
        if r.paragraph_id in top:
            assert r.keyword == pytest.approx(top[r.paragraph_id])
        else:
            assert r.keyword is None  # matches none of the query's terms


def test_keyword_matches_honour_filters_and_rank_like_the_search(either_filters):
    library = either_filters
    match = Searcher(library.store, library.index, library.embedder)._match("government minister embassy")
    ids, scores = library.store.keyword_matches(match, Filters())
    assert library.store.keyword_search(match, Filters(), 3) == [
        (int(ids[i]), pytest.approx(float(scores[i]))) for i in np.lexsort((ids, -scores))[:3]]
    only = Filters.make(year=2005)
    kept, _ = library.store.keyword_matches(match, only)
    assert set(kept.tolist()) == library.store.passing_ids(ids.tolist(), only)  # the filter applied inside
    assert 0 < len(kept) < len(ids)


def test_paragraphs_of_the_best_dense_cable_join_the_candidates(library):
    searcher = Searcher(library.store, library.index, library.embedder, SearchSettings(cable_expand=1))
    dense, _vector = searcher._dense("Sanginkhanov guarantees transferred detainees", Filters(), 1)
    cable = library.store.cable_ids_of([dense[0][0]])[dense[0][0]]
    joined = searcher._best_cables_paragraphs(dense, library.store.cable_ids_of([dense[0][0]]))
    assert joined == library.store.cable_paragraph_ids(cable) and len(joined) > 1


@pytest.mark.parametrize("filters", [Filters.make(year=2005), Filters.make(origin="Almaty"), Filters.make(year=1966),
                                     Filters.make(classification="secret"), Filters.make(origin="Atlantis")])
@pytest.mark.parametrize("depth", [1, 2, 20])
def test_filtered_dense_search_equals_one_restricted_to_every_passing_id(either_filters, filters, depth, monkeypatch):
    library = either_filters
    monkeypatch.setattr("qa.search.FILTER_OVERFETCH", depth)  # shallow: the restricted fallback; deep: the fast path
    searcher = Searcher(library.store, library.index, library.embedder)
    vector = library.embedder.embed(["guarantees for detainees and refugees"])[0]
    for n in (1, 3, 8):
        scores, ids = searcher._filtered_dense(vector, filters, n)
        want_scores, want_ids = library.index.search(vector, n, library.store.filtered_paragraph_ids(filters))
        assert ids.tolist() == want_ids.tolist() and scores == pytest.approx(want_scores)


def test_a_paragraph_inherits_its_cables_relevance(library):
    question = "Sanginkhanov guarantees transferred detainees terrorist activities"
    flat = Searcher(library.store, library.index, library.embedder, SearchSettings(cable_weight=0.0))
    aware = Searcher(library.store, library.index, library.embedder, SearchSettings(cable_weight=1.5))
    top_cable = aware.search(question, k=1)[0].cable_id
    same_cable = lambda hits: sum(h.cable_id == top_cable for h in hits)  # noqa: E731
    assert same_cable(aware.search(question, k=8)) >= same_cable(flat.search(question, k=8))
    assert same_cable(aware.search(question, k=8)) >= 6


def test_hits_carry_citation_metadata(library):
    hit = library.search("Sanginkhanov guarantees terrorist activities", k=1)[0]
    assert hit.citation == f"{hit.cable_id} ¶{hit.paragraph}"
    assert hit.subject and hit.created and hit.origin and hit.classification and hit.source
    assert set(hit.to_json()) == {"cable_id", "paragraph", "position", "citation", "score", "text", "subject",
                                  "created", "origin", "classification", "source"}


def test_keyword_hit_on_a_paragraph_without_vector_does_not_break_fusion(fake_library, tmp_path):
    cable = ("SECRET TESTPOST 000777\n\nSUBJECT: ZEBRA MIGRATION\n\n1. (S) Zebras crossed the border.\n\n"
             "2. (S) XXXXXXXXXXXX\n")
    (tmp_path / "c.txt").write_text(cable, encoding="utf-8")
    fake_library.ingest([tmp_path / "c.txt"])
    stats = fake_library.stats()
    assert (stats["paragraphs"], stats["vectors"]) == (2, 1)  # the redaction-only paragraph gets no vector
    hits = fake_library.search("zebra migration", k=5)
    assert {h.paragraph for h in hits} == {"1", "2"}


@pytest.mark.parametrize("query,expected", [
    ("what did reftel say", ["ALMATY1854", "ALMATY1838", "STATE92206"]),
    ("What did reftel A report about the Mazhilis?", ["ALMATY1854"]),
    ("see ref (B) and REF C", ["ALMATY1838", "STATE92206"]),
    ("reftel D", []),  # no fourth reference
    ("the referendum and a reference", []),
])
def test_reftel_letters_name_the_open_cables_references(query, expected):
    from qa.search import referenced_cables

    assert referenced_cables(query, ("ALMATY1854", "ALMATY1838", "STATE92206")) == expected


def test_reftel_of_the_cable_in_view_is_found_first(fake_library, tmp_path):
    (tmp_path / "a.txt").write_text(
        "CONFIDENTIAL ALMATY 000100\n\nSUBJECT: FIRST REPORT ON GRAIN EXPORTS\n\n"
        "1. (C) Wheat harvest figures were revised upward by the ministry.\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text(
        "CONFIDENTIAL ALMATY 000200\n\nSUBJECT: FOLLOW-UP ON GRAIN\n\nREF: A. ALMATY 100 B. STATE 999\n\n"
        "1. (C) Per reftel A, the harvest estimate changed again.\n", encoding="utf-8")
    fake_library.ingest([tmp_path])
    viewing = fake_library.store.cable("ALMATY200").id
    hits = fake_library.search("what did reftel A say about exports", k=3, viewing=viewing)
    assert hits[0].cable_id == fake_library.store.cable("ALMATY100").id
    without = fake_library.search("what did reftel A say about exports", k=3)
    assert without[0].cable_id != hits[0].cable_id or without[0].score < hits[0].score


def test_cable_expand_zero_adds_no_cable(library):
    searcher = Searcher(library.store, library.index, library.embedder, SearchSettings(cable_expand=0))
    dense, _vector = searcher._dense("Sanginkhanov guarantees transferred detainees", Filters(), 5)
    assert searcher._best_cables(dense, library.store.cable_ids_of([pid for pid, _ in dense])) == []

"""Filters answered from memory (qa/filter_index.py) give exactly what the SQL gives, and follow the database."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest

from qa.errors import QueryError
from qa.filter_index import FilterIndex
from qa.filters import Filters
from qa.search import Searcher
from tests.conftest import DATA, SEEDS

SLICE = 150  # shared-corpus pages: many posts, years, tags and classifications


@pytest.fixture(scope="module")
def corpus_library(tmp_path_factory, shared_corpus_dir):
    """The seeds plus a slice of the shared corpus, ingested with the fake embedder (filters need no model)."""
    from qa.library import Library
    from tests.conftest import FakeEmbedder

    root = tmp_path_factory.mktemp("filters")
    pages = root / "pages"
    pages.mkdir()
    for page in sorted(shared_corpus_dir.glob("*.html"))[:SLICE]:
        shutil.copy(page, pages / page.name)
    library = Library(root / "home", embedder=FakeEmbedder())
    library.ingest([SEEDS, DATA / "cables.csv", pages])
    yield library
    library.close()


@pytest.fixture(scope="module")
def shared_corpus_dir():
    from tests.conftest import SHARED_CORPUS

    if not SHARED_CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {SHARED_CORPUS} (clone the project beside ../shared)")
    return SHARED_CORPUS


def filters_from(store) -> list[Filters]:
    """Filters drawn from the stored values: parts of names in other cases, exact dates as range ends, none."""
    db = store.db
    origins = [r[0] for r in db.execute("SELECT DISTINCT origin FROM cables WHERE origin IS NOT NULL")]
    tags = sorted({t for (value,) in db.execute("SELECT tags FROM cables") for t in (value or "").split()})
    classes = [r[0] for r in db.execute("SELECT DISTINCT classification FROM cables WHERE classification IS NOT NULL")]
    days = [r[0][:10] for r in db.execute("SELECT created FROM cables WHERE created IS NOT NULL ORDER BY created")]
    years = [r[0] for r in db.execute("SELECT DISTINCT year FROM cables WHERE year IS NOT NULL")]
    out = [Filters.make(origin=o.split()[-1].lower()) for o in origins[::5]]
    out += [Filters.make(origin=o.upper()) for o in origins[1::9]]
    out += [Filters.make(tag=t.lower()) for t in tags[::7]] + [Filters.make(tag=t[:-1]) for t in tags[::11]]
    out += [Filters.make(classification=c.split("//")[0][:5].lower()) for c in classes]
    out += [Filters.make(year=y) for y in years] + [Filters.make(year=1901)]
    out += [Filters.make(date_from=days[i], date_to=days[j]) for i, j in ((0, 3), (5, 40), (10, 10), (40, -1))]
    out += [Filters.make(date_from=days[len(days) // 2]), Filters.make(date_to=days[len(days) // 3])]
    out += [Filters.make(origin="embassy", year=2009, classification="confidential"),
            Filters.make(origin="Atlantis"), Filters.make(tag="%"), Filters.make(origin="_"), Filters()]
    return out


def test_memory_filters_select_exactly_what_the_sql_selects(corpus_library):
    store = corpus_library.store
    memory = FilterIndex.read(store.db)
    filters = filters_from(store)
    assert len(filters) > 60
    all_ids = np.sort(store.vector_ids())
    probe = np.concatenate([all_ids[::3], [0, -7, int(all_ids.max()) + 1, int(all_ids.max()) + 10_000]])
    sizes = set()
    for chosen in filters:
        sql_ids = np.sort(store.filtered_paragraph_ids(chosen))
        assert memory.passing_paragraph_ids(chosen).tolist() == sql_ids.tolist(), chosen
        passing = set(probe[memory.passing(probe, chosen)].tolist())
        assert passing == store.passing_ids(probe.tolist(), chosen), chosen
        sizes.add(len(sql_ids))
    assert 0 in sizes and len(sizes) > 20  # the filters range from none to many paragraphs


def test_keyword_matches_are_the_same_filtered_in_memory(corpus_library):
    store = corpus_library.store
    searcher = Searcher(store, corpus_library.index, corpus_library.embedder)
    matches = [searcher._match(q) for q in ("government minister elections", "terrorism financing", "oil")]
    filters = filters_from(store)[::3]
    in_sql = {(m, f): store.keyword_matches(m, f) for m in matches for f in filters}
    store.keep_filter_index(wait=True)
    assert store._filter_index() is not None
    for (match, chosen), (ids, scores) in in_sql.items():
        got_ids, got_scores = store.keyword_matches(match, chosen)
        assert sorted(zip(got_ids.tolist(), got_scores.tolist(), strict=True)) == sorted(
            zip(ids.tolist(), scores.tolist(), strict=True))


def test_the_memory_index_follows_writes_from_this_and_other_connections(fake_library, fake_embedder):
    from qa.library import Library

    library = fake_library
    library.ingest([SEEDS])
    library.store.keep_filter_index(wait=True)
    year_1966 = Filters.make(year=1966)
    assert library.store._filter_index() is not None
    assert library.search("government", k=50, filters=year_1966) == []

    library.ingest([DATA / "cables.csv"])  # this connection writes: stale at once, the SQL answers meanwhile
    library.store._filter_keeper._next_build = 0.0  # not the rebuild throttle under test: a build may start now
    assert library.store._filter_index() is None
    assert {h.cable_id for h in library.search("government", k=50, filters=year_1966)} == {"66BUENOSAIRES2481"}
    library.store._filter_keeper.wait()
    assert library.store._filter_index() is not None
    assert {h.cable_id for h in library.search("government", k=50, filters=year_1966)} == {"66BUENOSAIRES2481"}

    other = Library(library.home, embedder=fake_embedder)  # another connection (another process, say) writes
    try:
        other.ingest([DATA / "04RANGOON88.html"])
    finally:
        other.close()
    secret = Filters.make(classification="secret")  # this library's vector index has not seen that cable yet
    rangoon = set(library.store.cable_paragraph_ids("04RANGOON88"))
    library.store._filter_keeper._next_build = 0.0  # not the rebuild throttle under test: a build may start now

    assert library.store._filter_index() is None
    assert set(library.store.filtered_paragraph_ids(secret).tolist()) == rangoon
    library.store._filter_keeper.wait()
    assert library.store._filter_index() is not None
    assert set(library.store.filtered_paragraph_ids(secret).tolist()) == rangoon


def test_dates_in_other_iso_forms_mean_the_same_day():
    assert Filters.make(date_from="20050701", date_to=" 2005-08-18 ") == Filters.make(date_from="2005-07-01",
                                                                                     date_to="2005-08-18")
    with pytest.raises(QueryError, match="filter from: 2005 is not a date"):  # a bare number from --batch JSON
        Filters.from_dict({"from": 2005})


def test_a_loaded_library_filters_in_memory_with_the_real_model(seeds_home):
    """Through the real stack: `load()` (the web app's start) moves filters to memory; same hits as the SQL."""
    from qa.library import Library

    questions = [("detainees transferred with guarantees", Filters.make(year=2005)),
                 ("terrorist financing", Filters.make(origin="almaty", date_from="2005-07-01")),
                 ("government", Filters.make(tag="pter")), ("Kazakhstan", Filters.make(origin="Atlantis"))]
    plain = Library(seeds_home)
    try:
        want = [[(h.cable_id, h.paragraph, round(h.score, 5)) for h in plain.search(q, k=10, filters=f)]
                for q, f in questions]
    finally:
        plain.close()
    loaded = Library(seeds_home)
    try:
        loaded.load()
        loaded.store._filter_keeper.wait()
        assert loaded.store._filter_index() is not None
        got = [[(h.cable_id, h.paragraph, round(h.score, 5)) for h in loaded.search(q, k=10, filters=f)]
               for q, f in questions]
    finally:
        loaded.close()
    assert got == want and any(want) and not want[-1]


def test_the_filter_choices_count_every_cable_of_each_tag(corpus_library):
    """The UI's tag choices: counted per distinct tag list, the same as a count over every cable."""
    from collections import Counter

    counted = Counter(tag for (tags,) in corpus_library.store.db.execute("SELECT tags FROM cables")
                      for tag in (tags or "").split())
    choices = corpus_library.store.facets()["tags"]
    assert dict(choices) == dict(counted) and len(choices) > 50
    assert choices == sorted(choices, key=lambda kv: (-kv[1], kv[0]))


def test_a_store_that_keeps_changing_is_not_rebuilt_after_every_change(fake_library):
    """After a build, the next one waits a few build-times: filters meanwhile run in SQL, and stay right."""
    library = fake_library
    library.ingest([SEEDS])
    library.store.keep_filter_index(wait=True)
    keeper = library.store._filter_keeper
    keeper._next_build = time.monotonic() + 3600  # as if the last build had just taken 15 minutes
    library.ingest([DATA / "04RANGOON88.html"])
    secret = Filters.make(classification="secret")
    assert library.store._filter_index() is None and not (keeper._builder and keeper._builder.is_alive())
    assert set(library.store.filtered_paragraph_ids(secret).tolist()) == set(
        library.store.cable_paragraph_ids("04RANGOON88"))
    keeper._next_build = 0.0  # the wait is over: the next filtered question starts a build
    assert library.store._filter_index() is None
    keeper.wait()
    assert library.store._filter_index() is not None

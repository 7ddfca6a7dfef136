"""When and how the vector index turns approximate: exact below a measured size, IVF with size-derived parameters above.

One exact query took 0.65 ms over 9.4k vectors but 90 ms over 100k on this shared 2-core machine (bench/query.py,
"exact ms/query"), so the index stays exact only up to ANN_THRESHOLD; above it an
inverted-file index (IVF) scans only `nprobe` of `nlist` clusters.  nlist grows with the square root of the size
and nprobe is a fixed share of nlist (recall@10 against exact search is measured by bench/query.py).  The IVF
keeps each vector in float16: at a million vectors, against float32 codes (one trial, 300 queries, one thread),
half the file and memory (754 against 1,484 MB), 7.8 against 10.7 ms a query, recall@10 0.998 against 1.0
(8-bit codes: 389 MB and 5.2 ms, but recall@10 0.94).  Vectors read back are the stored ones rounded to float16.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ANN_THRESHOLD = 30_000  # vectors; see the module docstring for the measurements behind it
RETRAIN_GROWTH = 4  # an IVF index is re-clustered once it holds this many times the size it was trained for
TRAIN_POINTS_PER_LIST = 48  # k-means sample: enough points per cluster, bounded training time
EXACT_FILTER_LIMIT = 30_000  # a filter allowing at most this many vectors is answered exactly from their vectors


@dataclass(frozen=True)
class IvfParams:
    """Inverted-file parameters for an index of `size` vectors."""

    nlist: int
    nprobe: int


def wants_ann(size: int) -> bool:
    """True when an index of this many vectors should be approximate."""
    return size >= ANN_THRESHOLD


def ivf_params(size: int) -> IvfParams:
    """nlist ~ sqrt(size) rounded to a power of two (256..65536); nprobe = nlist/16 (at least 16)."""
    nlist = 2 ** round(math.log2(max(math.sqrt(max(size, 1)), 1)))
    nlist = min(max(nlist, 256), 65536)
    return IvfParams(nlist=nlist, nprobe=min(nlist, max(16, nlist // 16)))


def build_ivf(dim: int, ids: np.ndarray, vectors: np.ndarray, seed: int = 1234):
    """A trained IVF inner-product index (float16 codes) holding (ids, vectors), reconstructible and removable
    by id."""
    import faiss

    params = ivf_params(len(ids))
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFScalarQuantizer(quantizer, dim, params.nlist, faiss.ScalarQuantizer.QT_fp16,
                                          faiss.METRIC_INNER_PRODUCT)
    index.own_fields = True
    quantizer.this.disown()
    rng = np.random.default_rng(seed)
    sample_size = min(len(ids), params.nlist * TRAIN_POINTS_PER_LIST)
    sample = vectors[np.sort(rng.choice(len(ids), size=sample_size, replace=False))]
    index.cp.min_points_per_centroid = 1  # a small sample is fine; do not warn
    index.train(np.ascontiguousarray(sample, dtype=np.float32))
    index.set_direct_map_type(faiss.DirectMap.Hashtable)  # reconstruct(id) and remove_ids by id
    index.nprobe = params.nprobe
    for start in range(0, len(ids), 100_000):
        index.add_with_ids(np.ascontiguousarray(vectors[start:start + 100_000], dtype=np.float32),
                           np.ascontiguousarray(ids[start:start + 100_000], dtype=np.int64))
    return index


def ivf_ids(index) -> np.ndarray:
    """Every id held by an IVF index (read from its inverted lists)."""
    import faiss

    lists = index.invlists
    parts = []
    for number in range(index.nlist):
        size = lists.list_size(number)
        if size:
            parts.append(faiss.rev_swig_ptr(lists.get_ids(number), size).copy())
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)


def flat_contents(index) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) of an IndexIDMap2 over a flat index, without copying vector by vector."""
    import faiss

    ids = faiss.vector_to_array(index.id_map).astype(np.int64)
    flat = faiss.downcast_index(index.index)
    vectors = faiss.vector_to_array(flat.codes).view(np.float32).reshape(len(ids), index.d)
    return ids, vectors

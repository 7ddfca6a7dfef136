"""Ingest on a Ray cluster: Ray Data parses files in parallel tasks and embeds paragraphs in an actor pool (the
model loaded once per actor, on GPUs when the cluster has them); the driver writes the store.

The driver puts cables in the local engine's order (files sorted as `iter_files` lists them, cables in file
order) through the local `Ingester`'s own dedupe and flush, and the actors embed the same groups of paragraphs,
so both engines write the same store: same cables, paragraphs, paragraph ids and vectors. Ray is an optional
extra (`.[ray]`).
"""

from __future__ import annotations

import math
import os
import pickle
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embeddings.errors import one_line
from embeddings.passages import Passage
from qa.cluster_work import CABLE, FILE_ROW, NEW, PARSE_ERROR, UNCHANGED, EmbedActor, parse_files
from qa.errors import ClusterError, EngineUnavailable, StoreError
from qa.ingest import Ingester, IngestReport, Progress, iter_files

INSTALL_HINT = "the ray engine needs Ray: pip install '.[ray]' (from the cables-qa folder) or pip install 'ray[data]'"
FILES_PER_BLOCK = 8  # files per parsing task at most; each block is one task for one embedding actor
CPU_EMBED_BATCH = 16  # cable rows per call to a CPU embedding actor (~150 paragraphs)
GPU_EMBED_BATCH = 128  # a GPU wants bigger batches
ACTOR_START_TIMEOUT = 300  # seconds for the whole actor pool to start (a cluster too small for it fails then)


@dataclass(frozen=True)
class ClusterRun:
    """What a Ray ingest did: the usual report plus where the work ran."""

    report: IngestReport
    actors: int
    gpus_per_actor: float
    nodes: tuple[str, ...]  # ids of the nodes whose actors embedded at least one cable
    seconds: float


def require_ray():
    """The `ray` module with Ray Data, or EngineUnavailable saying how to install it."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
        import ray.data  # the extra installs both; a bare `ray` lacks Ray Data
    except ImportError as error:
        raise EngineUnavailable(f"{INSTALL_HINT} ({error})") from error
    return ray


def ingest_on_ray(library, paths: Iterable[str | os.PathLike], address: str | None = None,
                  gpus_per_actor: float | None = None, actors: int | None = None,
                  on_progress: Progress | None = None, embed_batch: int | None = None) -> ClusterRun:
    """Ingest `paths` into `library` using the Ray cluster at `address` (None: $RAY_ADDRESS or a local one).

    `gpus_per_actor`: None uses one GPU per actor when the cluster has GPUs, else CPU actors; `actors`: pool size
    (default: as many as the cluster's GPUs or CPUs hold); `embed_batch`: cables per actor call. Incremental and
    idempotent like the local engine.
    """
    ray = require_ray()
    start = time.monotonic()
    with library._lock:
        embedder = library.embedder  # loaded (and exported) here first: actors on this machine reuse the export
        _check_model(library, embedder.name)
        report = IngestReport()
        files = list(iter_files(paths, report, exclude=library.home))
        index = _IndexBuilder(library)
        ingester = _ClusterIngester(index.recording(library.store), _StreamedVectors(embedder), on_progress,
                                    home=library.home)
        ingester.report = report
        nodes: set[str] = set()
        pool = (0, 0.0)
        connected_here = False
        try:
            if files:
                connected_here = _connect(ray, address)
                pool = _pool_size(ray, gpus_per_actor, actors)
                model = library.model_option or embedder.name  # a --model folder path, as this machine loaded it
                rows = _stream_rows(ray, library, files, pool, model, embed_batch)
                for file_rows in _files_in_order(rows, len(files)):
                    nodes.update(r["node"] for r in file_rows if r["kind"] == CABLE and r["vectors"])
                    ingester.ingest_rows(file_rows)
            ingester.flush()
        except ClusterError:
            raise
        except Exception as error:
            if not _is_ray_failure(error):
                raise
            stored = report.cables_added + report.cables_replaced
            raise ClusterError(f"the Ray job failed ({one_line(error, 240)}); the {stored} cables stored before the "
                               "failure are complete and kept; run the same command again to continue") from error
        finally:
            index.finish()
            if connected_here:
                ray.shutdown()
    return ClusterRun(report=report, actors=pool[0], gpus_per_actor=pool[1], nodes=tuple(sorted(nodes)),
                      seconds=time.monotonic() - start)


# ---- the cluster side ------------------------------------------------------------------------------------------
def _connect(ray, address: str | None) -> bool:
    """Join the cluster (or start a local one); True when this call started the connection."""
    import logging

    if ray.is_initialized():
        return False
    if not (address or os.environ.get("RAY_ADDRESS")):
        # a Ray of its own for this run ("local": never joins a cluster left over from an earlier `ray start`)
        address = "local"
    kwargs = {"include_dashboard": False} if address == "local" else {}
    if address not in ("local", "auto", None) and not _reachable(address):  # else Ray retries for minutes
        raise ClusterError(f"no Ray cluster answers at {address}; start one with `ray start --head --port PORT` "
                           "(see docs/scaling.md) or check --address")
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as error:
        where = address or os.environ.get("RAY_ADDRESS") or "a local Ray instance"
        raise ClusterError(f"cannot connect to the Ray cluster at {where} ({one_line(error, 240)}); start it with "
                           "`ray start --head` (see docs/scaling.md) or check --address") from error
    return True


def _reachable(address: str, timeout: float = 5.0) -> bool:
    """Whether something listens at HOST:PORT (the head's GCS port); addresses like ray://... are left to Ray."""
    import socket

    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or "://" in address:
        return True
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except OSError:
        return False


def _pool_size(ray, gpus_per_actor: float | None, actors: int | None) -> tuple[int, float]:
    """(actors, GPUs per actor): one actor per GPU on GPU clusters, else one single-threaded actor per CPU."""
    resources = ray.cluster_resources()
    gpus = float(resources.get("GPU", 0))
    cpus = float(resources.get("CPU", 1))
    if gpus_per_actor is None:
        gpus_per_actor = 1.0 if gpus else 0.0
    if gpus_per_actor and gpus_per_actor > gpus:
        raise ClusterError(f"--gpus-per-actor {gpus_per_actor:g} but the cluster has {gpus:g} GPUs; "
                           "use --gpus-per-actor 0 for CPU actors")
    fits = int(gpus // gpus_per_actor) if gpus_per_actor else int(cpus)
    return max(1, actors or fits), float(gpus_per_actor)


def _stream_rows(ray, library, files: Sequence[Path], pool: tuple[int, float], model: str,
                 embed_batch: int | None) -> Iterator[dict]:
    """Rows from the cluster, parsed and embedded; the order may be any (the driver puts them back in order)."""
    import logging

    import ray.data

    actors, gpus = pool
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # per-run INFO lines; failures still raise here
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    context.execution_options.preserve_order = True  # keeps the driver's reorder buffer small
    context.wait_for_min_actors_s = ACTOR_START_TIMEOUT  # every actor loads its model before work is handed out
    seen = ray.put(frozenset(r[0] for r in library.store.db.execute("SELECT sha256 FROM files")))
    stored = ray.put(dict(library.store.db.execute("SELECT id, completeness FROM cables").fetchall()))
    items = [{"seq": seq, "path": str(path), "read_path": os.path.abspath(path)} for seq, path in enumerate(files)]
    blocks = min(len(items), max(math.ceil(len(items) / FILES_PER_BLOCK), 4 * actors))  # work for every actor
    dataset = ray.data.from_items(items, override_num_blocks=blocks)
    # parsing is light next to embedding: tasks take no CPU slot, so a pool that fills every CPU cannot starve them
    dataset = dataset.map_batches(parse_files, fn_kwargs={"seen_files": seen, "stored": stored}, batch_size=None,
                                  num_cpus=0, compute=ray.data.TaskPoolStrategy(size=min(blocks, 2 * _node_count(ray))))
    threads = None if gpus else 1
    dataset = dataset.map_batches(
        EmbedActor, fn_constructor_kwargs={"model": model, "backend": library.backend,
                                           "cache_dir": str((library.home / "models").resolve()), "threads": threads},
        batch_size=embed_batch or (GPU_EMBED_BATCH if gpus else CPU_EMBED_BATCH), num_cpus=1, num_gpus=gpus or None,
        compute=ray.data.ActorPoolStrategy(size=actors, max_tasks_in_flight_per_actor=1))
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=2):
        for i in range(len(batch["seq"])):
            yield {name: batch[name][i] for name in batch}


def _node_count(ray) -> int:
    return sum(1 for node in ray.nodes() if node.get("Alive"))


def _files_in_order(rows: Iterable[dict], count: int) -> Iterator[list[dict]]:
    """Regroup rows into files, yielded in file order (seq 0, 1, ...) with their cables in file order."""
    waiting: dict[int, dict[int, dict]] = {}
    next_seq = 0
    for row in rows:
        waiting.setdefault(int(row["seq"]), {})[int(row["part"])] = row
        while next_seq in waiting and FILE_ROW in waiting[next_seq] \
                and len(waiting[next_seq]) == int(waiting[next_seq][FILE_ROW]["count"]) + 1:
            parts = waiting.pop(next_seq)
            yield [parts[i] for i in range(len(parts) - 1)] + [parts[FILE_ROW]]
            next_seq += 1
    if next_seq != count:
        raise ClusterError(f"the Ray job returned {next_seq} of {count} files; run the same command again")


# ---- the driver side: the local engine's own dedupe and store writes -----------------------------------------
class _ClusterIngester(Ingester):
    """The local Ingester fed with rows parsed and embedded on the cluster instead of files read here."""

    def ingest_rows(self, rows: list[dict]) -> None:
        """One file's rows (cables then its FILE row): the same steps as `Ingester.ingest_file`."""
        file_row = rows[-1]
        path = str(file_row["path"])
        self.report.files += 1
        if file_row["status"] == UNCHANGED or (file_row["status"] == NEW and self.store.file_seen(file_row["sha"])):
            self.report.unchanged_files += 1
            return
        if file_row["status"] != NEW:
            self.report.skipped.append((path, bytes(file_row["payload"]).decode()))
            return
        problems = 0
        for row in rows[:-1]:
            if row["kind"] == PARSE_ERROR:
                self.report.skipped.append((path, bytes(row["payload"]).decode()))
                problems += 1
                continue
            cable = pickle.loads(row["payload"])
            if row["vectors"]:
                self.embedder.receive(cable, np.frombuffer(row["vectors"], dtype=np.float32),
                                      np.frombuffer(row["sentences"], dtype=np.float16))
            self.add(cable)
        self.flush()
        self.embedder.forget()
        if not problems:
            self.store.mark_file(file_row["sha"], path)


class _StreamedVectors:
    """The Ingester's embedder on the driver: hands back what the actors computed, by paragraph text.

    A text the cluster did not embed (its cable was judged already stored when the job started, and the store
    changed since) is embedded here with the local model, so the store never misses a vector.
    """

    def __init__(self, local) -> None:
        self.local = local
        self.name = local.name
        self.dim = local.dim
        self.passages: dict[str, Passage] = {}
        self.embedded_here = 0

    def receive(self, cable, flat: np.ndarray, flat_sentences: np.ndarray) -> None:
        """A cable's paragraph vectors and sentence vectors as the actor sent them (flat, in paragraph order)."""
        from qa.ingest import embedding_input, indexable

        inputs = [embedding_input(cable, p) for p in cable.paragraphs if indexable(p)]
        vectors = flat.reshape(len(inputs), self.dim) if inputs else flat.reshape(0, self.dim)
        sentences = flat_sentences.reshape(-1, self.dim).astype(np.float32)
        cursor = 0
        for (text, spans), vector in zip(inputs, vectors, strict=True):
            self.passages[text] = Passage(vector, sentences[cursor:cursor + len(spans)])
            cursor += len(spans)

    def embed_passages(self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]) -> list[Passage]:
        missing = {t: s for t, s in zip(texts, spans, strict=True) if t not in self.passages}
        if missing:
            self.embedded_here += len(missing)
            self.passages.update(zip(missing, self.local.embed_passages(list(missing), list(missing.values())),
                                     strict=True))
        return [self.passages[t] for t in texts]

    def forget(self) -> None:
        self.passages.clear()


class _IndexBuilder:
    """Grows the FAISS index from the streamed vectors as cables are stored (never rebuilt), saved once at the end.

    Past its threshold the index turns approximate in place, trained on the vectors streamed so far
    (`embeddings.index.VectorIndex`).
    """

    def __init__(self, library) -> None:
        self.library = library
        self.index = library.index  # loaded and synced with the store as it is before this run

    def recording(self, store):
        """`store` whose put_cable also keeps the index in step with what it writes."""
        index = self.index

        class RecordingStore:
            def __getattr__(self, name):
                return getattr(store, name)

            def put_cable(self, cable, vectors, replaces=None, sentence_vectors=None):
                if replaces:  # SQLite may give the replaced rows' ids out again: drop them from the index first
                    index.remove(np.asarray(store.cable_paragraph_ids(replaces), dtype=np.int64))
                ids = store.put_cable(cable, vectors, replaces=replaces, sentence_vectors=sentence_vectors)
                kept = [(i, v) for i, v in zip(ids, vectors, strict=True) if v is not None]
                if kept:
                    index.add(np.asarray([i for i, _ in kept], dtype=np.int64), np.vstack([v for _, v in kept]))
                return ids

        return RecordingStore()

    def finish(self) -> None:
        """Check the index against the store (a no-op unless something was missed) and save it once."""
        self.library._sync(self.index, save=False)
        self.library._save_index(self.index)


def _check_model(library, name: str) -> None:
    stored_model = library.store.get_meta("model")
    if stored_model and stored_model != name:
        raise StoreError(f"the store {library.home} was built with model {stored_model!r}, not {name!r}; "
                         f"use --model {stored_model} or another --home")
    if not stored_model:
        library.store.set_meta("model", name)


def _is_ray_failure(error: BaseException) -> bool:
    module = type(error).__module__ or ""
    return module.startswith("ray") or "Ray" in type(error).__name__



"""Texts of any length as token windows, and span vectors pooled from the text's own token states.

A text is cut into windows of WINDOW_TOKENS word pieces (the model's special tokens included), each run through
the model once; the text's vector is the normalised mean of its windows' vectors. Spans given by the caller
(sentences of a paragraph) get vectors too, at no extra model work: the mean of the token states that fall inside
each span, read off the same forward passes ("late chunking", Günther et al. 2024), so a sentence is seen in the
context of its paragraph.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

WINDOW_TOKENS = 128  # MiniLM was trained on 128-token inputs; measured faster than 256 and, with span vectors, better
Span = tuple[int, int]  # character offsets [start, end) into the text


@dataclass(frozen=True)
class Passage:
    """A text's unit vector and one unit vector per requested span (rows in the order the spans were given)."""

    vector: np.ndarray
    spans: np.ndarray


@dataclass(frozen=True)
class Tokens:
    """A text's word pieces without special tokens, with each piece's character offsets."""

    ids: list[int]
    offsets: list[Span]


Run = Callable[[list[list[int]]], list[np.ndarray]]  # windows' token ids -> their last hidden states (tokens x dim)


def windows(tokens: Tokens, specials: tuple[list[int], list[int]], width: int = WINDOW_TOKENS) -> list[list[int]]:
    """Token ids of each window: the special tokens around consecutive runs of the text's pieces."""
    head, tail = specials
    room = max(1, width - len(head) - len(tail))
    runs = [tokens.ids[start:start + room] for start in range(0, len(tokens.ids), room)] or [[]]
    return [head + run + tail for run in runs]


def embed_passages(tokenized: Sequence[Tokens], spans: Sequence[Sequence[Span]], run: Run,
                   specials: tuple[list[int], list[int]], pooling: str = "mean",
                   width: int = WINDOW_TOKENS) -> list[Passage]:
    """The vector of each text and of its spans, from one forward pass per window."""
    head, tail = specials
    per_text = [windows(tokens, specials, width) for tokens in tokenized]
    states = run([window for text_windows in per_text for window in text_windows])
    passages: list[Passage] = []
    cursor = 0
    for number, tokens in enumerate(tokenized):
        count = len(per_text[number])
        window_states = states[cursor:cursor + count]
        cursor += count
        vector = _unit(np.mean([_unit(_pool(s, pooling)) for s in window_states], axis=0))
        body = [s[len(head):len(s) - len(tail)] for s in window_states]  # the text's own pieces, in order
        pieces = np.concatenate(body) if body else np.zeros((0, vector.shape[0]), np.float32)
        passages.append(Passage(vector.astype(np.float32), _span_vectors(pieces, tokens.offsets, spans[number],
                                                                        vector.shape[0])))
    return passages


def _span_vectors(pieces: np.ndarray, offsets: list[Span], spans: Sequence[Span], dim: int) -> np.ndarray:
    """Unit mean of the piece states whose start lies in each span; a span without pieces gets a zero row."""
    out = np.zeros((len(spans), dim), dtype=np.float32)
    if not len(spans) or not len(offsets):
        return out
    starts = np.fromiter((start for start, _ in offsets), dtype=np.int64, count=len(offsets))
    for row, (begin, end) in enumerate(spans):
        inside = (starts >= begin) & (starts < end)
        if inside.any():
            out[row] = _unit(pieces[inside].mean(axis=0))
    return out


def _pool(states: np.ndarray, pooling: str) -> np.ndarray:
    if pooling == "cls":
        return states[0]
    if pooling == "max":
        return states.max(axis=0)
    return states.mean(axis=0)


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


class WindowedEmbedder:
    """What both backends share: `embed` and `embed_passages`, given `_windowing()` and `_run(windows)`.

    `_windowing()` returns (tokenizer with `pieces` and `specials`, pooling mode, lower-case the text first,
    the model's longest input).
    """

    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One unit vector per text, any length (long texts are the mean of their windows)."""
        passages = self.embed_passages(texts, [()] * len(texts))
        if not passages:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.vstack([passage.vector for passage in passages])

    def embed_passages(self, texts: Sequence[str], spans: Sequence[Sequence[Span]]) -> list[Passage]:
        """Each text's vector and the vectors of its character spans, from the same forward passes."""
        if not texts:
            return []
        tokenizer, pooling, lower_case, longest = self._windowing()
        texts = [str(text).lower() if lower_case else str(text) for text in texts]
        return embed_passages(tokenizer.pieces(texts), spans, self._run, tokenizer.specials, pooling,
                              width=min(WINDOW_TOKENS, longest))

    def _windowing(self):
        raise NotImplementedError

    def _run(self, windows: list[list[int]]) -> list[np.ndarray]:
        raise NotImplementedError

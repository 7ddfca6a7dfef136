"""Word-piece tokenisation straight from `tokenizer.json` with the `tokenizers` library.

Importing `transformers` only to tokenise costs ~2.5 s of start-up; the Rust tokenizer it wraps loads in ~20 ms.
A model folder without `tokenizer.json` falls back to transformers' AutoTokenizer behind the same interface.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from embeddings.passages import Tokens

DEFAULT_MAX_LENGTH = 512


class FastTokenizer:
    """Token ids for texts (truncated, unpadded) and padded numpy batches; safe to share between threads."""

    def __init__(self, folder: str | Path) -> None:
        folder = Path(folder)
        config = _read_json(folder / "tokenizer_config.json")
        length = config.get("model_max_length")
        self.model_max_length = int(length) if isinstance(length, int) and 0 < length < 100_000 else DEFAULT_MAX_LENGTH
        self._lock = threading.Lock()  # the Rust tokenizer's truncation setting is shared state
        self._hf = None
        self._fast = None
        self._specials: tuple[list[int], list[int]] | None = None
        if (folder / "tokenizer.json").is_file():
            from tokenizers import Tokenizer

            self._fast = Tokenizer.from_file(str(folder / "tokenizer.json"))
            self._fast.no_padding()
            pad_token = config.get("pad_token")
            pad_token = pad_token.get("content") if isinstance(pad_token, dict) else pad_token
            pad_id = self._fast.token_to_id(pad_token) if isinstance(pad_token, str) else None
            self.pad_token_id = int(pad_id if pad_id is not None else self._fast.token_to_id("[PAD]") or 0)
        else:
            from transformers import AutoTokenizer

            self._hf = AutoTokenizer.from_pretrained(str(folder), use_fast=True, local_files_only=True)
            self.pad_token_id = int(self._hf.pad_token_id or 0)
            hf_length = getattr(self._hf, "model_max_length", None)
            if isinstance(hf_length, int) and 0 < hf_length < 100_000:
                self.model_max_length = hf_length

    def encode(self, texts: Sequence[str], max_length: int) -> list[list[int]]:
        """Token ids (with the model's special tokens) of each text, cut at `max_length`."""
        texts = list(texts)
        with self._lock:
            if self._fast is not None:
                self._fast.enable_truncation(max_length)
                return [encoding.ids for encoding in self._fast.encode_batch(texts)]
            return self._hf(texts, truncation=True, max_length=max_length, return_attention_mask=False,
                            return_token_type_ids=False)["input_ids"]

    def pieces(self, texts: Sequence[str]) -> list[Tokens]:
        """Each whole text's word pieces (no special tokens, no truncation) with their character offsets."""
        texts = list(texts)
        if self._fast is not None:
            with self._lock:
                self._fast.no_truncation()
                encodings = self._fast.encode_batch(texts, add_special_tokens=False)
            return [Tokens(list(e.ids), [tuple(o) for o in e.offsets]) for e in encodings]
        out = self._hf(texts, add_special_tokens=False, return_offsets_mapping=True, return_attention_mask=False,
                       return_token_type_ids=False)
        return [Tokens(list(ids), [tuple(o) for o in offsets])
                for ids, offsets in zip(out["input_ids"], out["offset_mapping"], strict=True)]

    @property
    def specials(self) -> tuple[list[int], list[int]]:
        """The special tokens the model expects before and after a text (BERT: [CLS] and [SEP])."""
        if self._specials is None:
            bare = self.pieces(["a"])[0].ids
            full = self.encode(["a"], DEFAULT_MAX_LENGTH)[0]
            at = next((i for i in range(len(full)) if full[i:i + len(bare)] == bare), 0)
            self._specials = (full[:at], full[at + len(bare):])
        return self._specials

    def batch(self, texts: Sequence[str], max_length: int) -> dict[str, np.ndarray]:
        """Right-padded int64 `input_ids` and `attention_mask` arrays for a batch of texts."""
        ids = self.encode(texts, max_length)
        width = max((len(row) for row in ids), default=0)
        input_ids = np.full((len(ids), width), self.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(ids), width), dtype=np.int64)
        for row, tokens in enumerate(ids):
            input_ids[row, :len(tokens)] = tokens
            mask[row, :len(tokens)] = 1
        return {"input_ids": input_ids, "attention_mask": mask}


def _read_json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}

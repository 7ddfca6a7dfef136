"""Embedding models and the vector index. Knows nothing about cables: texts and arrays in, arrays out."""

from embeddings.index import VectorIndex
from embeddings.model import DEFAULT_MODEL, Embedder, load_embedder

__all__ = ["DEFAULT_MODEL", "Embedder", "VectorIndex", "load_embedder"]

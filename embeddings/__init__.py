"""Embedding models and the vector index. Knows nothing about cables: texts and arrays in, arrays out."""

from embeddings.index import VectorIndex
from embeddings.model import BASE_MODEL, Embedder, default_model, load_embedder

__all__ = ["BASE_MODEL", "Embedder", "VectorIndex", "default_model", "load_embedder"]

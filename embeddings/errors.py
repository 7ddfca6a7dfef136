"""Errors of the embeddings package (it must not import from `qa`)."""


class EmbeddingsError(Exception):
    """A model or index problem; str() is a one-line message saying what to do."""


class ModelLoadError(EmbeddingsError):
    """The model could not be loaded from the given name or path."""


class IndexFileError(EmbeddingsError):
    """The index file is missing, damaged, or was built by another model."""

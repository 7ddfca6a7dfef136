"""Errors of the embeddings package (it must not import from `qa`)."""


class EmbeddingsError(Exception):
    """A model or index problem; str() is a one-line message saying what to do."""


class ModelLoadError(EmbeddingsError):
    """The model could not be loaded from the given name or path."""


class ModelNotOnDisk(ModelLoadError):
    """The model is neither a folder nor in the local Hugging Face cache: only a download could get it."""


class IndexFileError(EmbeddingsError):
    """The index file is missing, damaged, or was built by another model."""


def one_line(error: BaseException, limit: int = 300) -> str:
    """A library's error text as one line of at most `limit` characters (they often span lines or pages)."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."

"""Typed errors raised by library code; only the CLI and the UI turn them into messages."""

from __future__ import annotations


class CablesError(Exception):
    """Base class: every error the user can act on. str(error) is a one-line message."""

    exit_code = 1


class ParseError(CablesError):
    """A text could not be read as a cable (names the source and what is wrong)."""

    exit_code = 3


class InputError(CablesError):
    """A path or file given by the user cannot be used (missing, unreadable, binary...)."""

    exit_code = 3


class StoreError(CablesError):
    """The store is missing, damaged or was built by another model."""

    exit_code = 4


class ModelError(CablesError):
    """The embedding model cannot be loaded."""

    exit_code = 5


class QueryError(CablesError):
    """A query or filter value is unusable (empty question, bad date, k out of range...)."""

    exit_code = 2


class EngineUnavailable(CablesError):
    """The requested ingest engine cannot run here (e.g. Ray is not installed); says what to install."""

    exit_code = 2


class ClusterError(CablesError):
    """The cluster failed during a distributed ingest; what was stored before is kept, and re-running continues."""

    exit_code = 6

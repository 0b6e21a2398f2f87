"""Domain errors of aiqa; each message says what to do next."""

from __future__ import annotations


class AiqaError(Exception):
    """Base of every error aiqa raises on purpose; the message is for the user."""


class IndexNotFound(AiqaError):
    """No index exists where one was expected."""


class IndexMismatch(AiqaError):
    """The index on disk was built by another model or format version."""


class IndexBusy(AiqaError):
    """Another build holds the index lock."""


class EmptyCorpus(AiqaError):
    """The corpus folder has no readable document."""


class UnreadableDocument(AiqaError):
    """A document cannot be read; the message is the one-line reason."""


class ModelUnavailable(AiqaError):
    """The embedding model or tokenizer files cannot be provided offline."""


class BadRequest(AiqaError):
    """A question or request is malformed (empty, too long, wrong type)."""


class BadSetting(AiqaError):
    """A setting (environment variable or file it names) is not usable; the message names it."""


class IndexReadOnly(AiqaError):
    """The index folder cannot be written (a read-only volume): it can be served, not rebuilt."""


class StoreUnavailable(AiqaError):
    """The index store (a Milvus server) cannot be reached or refused a request."""


class GenerationFailed(AiqaError):
    """The LLM server could not write an answer (down, slow, an error status, or an unreadable reply)."""

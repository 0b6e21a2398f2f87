"""aiqa: question answering over your own documents, Korean first, with cited answers, offline.

Importing this package stays light: torch, sentence-transformers, faiss and gradio load only
when a function that needs them runs.
"""

from aiqa.config import Settings
from aiqa.errors import AiqaError, BadRequest, IndexBusy, IndexMismatch, IndexNotFound, UnreadableDocument

__version__ = "0.1.0"

__all__ = [
    "AiqaError",
    "BadRequest",
    "IndexBusy",
    "IndexMismatch",
    "IndexNotFound",
    "Settings",
    "UnreadableDocument",
    "__version__",
]

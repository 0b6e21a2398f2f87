"""Hits -> Answer: candidate statements, the fitted answer decision, and the cited presentation."""

from aiqa.answer.compose import Composer
from aiqa.records import Answer, Citation

__all__ = ["Answer", "Citation", "Composer"]

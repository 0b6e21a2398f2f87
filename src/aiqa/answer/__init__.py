"""Hits -> Answer: candidate statements, the fitted answer decision, and the cited presentation."""

from aiqa.answer.compose import Answer, Composer
from aiqa.answer.present import Citation

__all__ = ["Answer", "Citation", "Composer"]

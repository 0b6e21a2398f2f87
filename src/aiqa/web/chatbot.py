"""The chat's message list: Gradio's Chatbot, with the user's own words shown as text.

Replies are HTML that render.py escaped already; a user's "<img onerror>" or "[x](javascript:...)"
must not become markup or a live link either, so user text is escaped on the way to the page
and restored on the way back. A subclass rather than a wrapper, because Gradio rebuilds a
component from its class when an update changes a property (the language toggle does).
Imported only where gradio is (ui.py); Gradio keeps the chatbot.pyi stub beside it in step.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import gradio as gr


def _user_text(data: Any, change: Callable[[str], str]) -> None:
    """Apply `change` to the text of every user message of a chatbot value (ChatbotDataMessages)."""
    for message in data.root if data is not None else []:
        if message.role == "user":
            for part in message.content:
                if getattr(part, "type", None) == "text":
                    part.text = change(part.text)


class EscapingChatbot(gr.Chatbot):
    is_template = True  # drawn by Gradio's own chatbot

    def postprocess(self, value):
        data = super().postprocess(value)
        _user_text(data, html.escape)
        return data

    def preprocess(self, payload):
        _user_text(payload, html.unescape)
        return super().preprocess(payload)

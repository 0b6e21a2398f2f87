"""The web layer: HTTP API, Gradio chat, widget, access control and uploads over one Engine."""

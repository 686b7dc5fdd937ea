"""The browser app (Gradio): ``rag serve`` starts :func:`ui.app.main`."""

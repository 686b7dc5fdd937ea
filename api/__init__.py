"""The HTTP API face: REST under /api/v1 and OpenAI-compatible chat under /v1.

A client of the engine like the CLI and the browser app: the routes call the same
``rag`` functions and hold no ranking or answering logic of their own.
"""

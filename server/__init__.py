"""The one process `rag serve` starts: the HTTP API with the browser app mounted in it.

A composition layer above the faces: it imports ``api`` and ``ui`` (and, for
``python -m server``, the CLI's shared flags); nothing imports it.
"""

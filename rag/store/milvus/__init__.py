"""The ``milvus`` store: the index in a Milvus server (see docs/milvus.md)."""

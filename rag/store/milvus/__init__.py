"""The ``milvus`` store: the index in a Milvus server (see docs/speed-and-scale.md, "Past one machine")."""

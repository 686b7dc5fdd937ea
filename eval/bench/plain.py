"""The plain LangChain ingest pipeline that ``python -m eval.bench ingest`` compares against.

    python -m eval.bench.plain ARTICLES.json

What a textbook LangChain pipeline does with the same articles: each article body
becomes a ``Document``, ``RecursiveCharacterTextSplitter`` cuts it into chunks of at
most 256 word pieces of the model's own tokenizer (64 overlapping, as ingest's
passages), and ``HuggingFaceEmbeddings`` (sentence-transformers, torch float32)
embeds every chunk. Embedding only: nothing is written. It prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import time


def main(argv: list[str] | None = None) -> int:
    t0 = time.perf_counter()
    from langchain_core.documents import Document
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    from transformers import AutoTokenizer

    from rag.embed.model_files import resolve_model_path
    from rag.settings import DEFAULT_EMBEDDING_MODEL

    path = (argv or sys.argv[1:])[0]
    model = resolve_model_path(DEFAULT_EMBEDDING_MODEL)
    records = json.loads(open(path, encoding="utf-8").read())
    docs = [Document(page_content=r["body"], metadata={"title": r.get("title"), "source": r.get("source")})
            for r in records if (r.get("body") or "").strip()]
    splitter = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
        AutoTokenizer.from_pretrained(model), chunk_size=256, chunk_overlap=64
    )
    chunks = splitter.split_documents(docs)
    t_split = time.perf_counter()
    embeddings = HuggingFaceEmbeddings(model_name=model, model_kwargs={"device": "cpu"},
                                       encode_kwargs={"normalize_embeddings": True})
    vectors = embeddings.embed_documents([c.page_content for c in chunks])
    t_end = time.perf_counter()
    print(json.dumps({"articles": len(docs), "chunks": len(chunks), "dim": len(vectors[0]) if vectors else 0,
                      "split_s": round(t_split - t0, 2), "embed_s": round(t_end - t_split, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The retriever as a LangChain ``BaseRetriever`` (the boundary to LangChain chains)."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from ..types import SearchHit
from .filters import Filters


def hit_to_document(hit: SearchHit) -> Document:
    """A passage as a LangChain Document: verbatim text plus everything needed to cite it."""
    meta = hit.to_dict()
    text = meta.pop("text")
    return Document(page_content=text, metadata=meta, id=str(hit.passage.passage_id))


class ArticleRetriever(BaseRetriever):
    """Wraps :class:`rag.engine.Engine` search; each call sees the engine's live index."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    engine: Any  # rag.engine.Engine (typed loosely to keep pydantic out of the engine)
    k: int = 10
    mode: str | None = None
    filters: Filters | None = None
    mmr: bool | None = None

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        result = self.engine.search(query, k=self.k, mode=self.mode, filters=self.filters, mmr=self.mmr)
        return [hit_to_document(h) for h in result.hits]

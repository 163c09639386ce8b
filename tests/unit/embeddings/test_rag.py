"""The RAG examples of docs/embeddings.md, offline: each framework's own vector store."""

from __future__ import annotations

from langchain_core.documents import Document
from langchain_core.vectorstores import InMemoryVectorStore
from llama_index.core import VectorStoreIndex
from llama_index.core.schema import TextNode

from langchain_runcrate.embeddings import RuncrateEmbeddings
from llama_index_runcrate.embeddings import RuncrateEmbedding
from tests.helpers import Recorder

from .replies import echo

KEY = "rc_live_rag_test"
DOCS = ["Cats purr and nap.", "Dogs fetch sticks.", "Fish swim in schools."]


def test_langchain_in_memory_vector_store() -> None:
    rec = Recorder([echo, echo])
    embeddings = RuncrateEmbeddings(model="BAAI/bge-m3", api_key=KEY, http_client=rec.client())
    store = InMemoryVectorStore(embedding=embeddings)
    store.add_documents([Document(page_content=t) for t in DOCS])
    hits = store.similarity_search("Which pet will fetch? A dog.", k=1)
    assert [h.page_content for h in hits] == ["Dogs fetch sticks."]
    assert [b["input"] for b in rec.bodies] == [DOCS, "Which pet will fetch? A dog."]


async def test_langchain_in_memory_vector_store_async() -> None:
    rec = Recorder([echo, echo])
    embeddings = RuncrateEmbeddings(
        model="BAAI/bge-m3", api_key=KEY, http_async_client=rec.async_client()
    )
    store = InMemoryVectorStore(embedding=embeddings)
    await store.aadd_texts(DOCS)
    hits = await store.asimilarity_search("Tell me about a cat", k=1)
    assert [h.page_content for h in hits] == ["Cats purr and nap."]


def test_llama_index_vector_store_index() -> None:
    rec = Recorder([echo, echo])
    embed_model = RuncrateEmbedding(model="BAAI/bge-m3", api_key=KEY, http_client=rec.client())
    index = VectorStoreIndex([TextNode(text=t) for t in DOCS], embed_model=embed_model)
    nodes = index.as_retriever(similarity_top_k=1).retrieve("Where do fish live?")
    assert [n.node.get_content() for n in nodes] == ["Fish swim in schools."]
    assert [b["input"] for b in rec.bodies] == [DOCS, "Where do fish live?"]

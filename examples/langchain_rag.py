"""A LangChain RAG chain on Runcrate: embeddings + an in-memory vector store + chat.

    python examples/langchain_rag.py

Live when RUNCRATE_API_KEY is set, else it replays cassettes/examples/langchain_rag.yaml
(offline). Its first line, on stderr, says which and, live, the URLs and models. Settings:
    RUNCRATE_BASE_URL             chat (default https://api.runcrate.ai/v1)
    RUNCRATE_EMBEDDINGS_BASE_URL  embeddings (default: RUNCRATE_BASE_URL)
    RUNCRATE_REASONING_BASE_URL   reasoning models (default: RUNCRATE_BASE_URL; unused here)
    RUNCRATE_MODEL                chat model (default deepseek/deepseek-v3.2)
    RUNCRATE_EMBEDDING_MODEL      embedding model (default BAAI/bge-m3)
"""

from __future__ import annotations

from pathlib import Path

from _replay import base_url, chat_model, embedding_model, session
from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore

from langchain_runcrate import ChatRuncrate, RuncrateEmbeddings

DATA = Path(__file__).parent / "data"
QUESTION = "What happens when my Runcrate credits run out?"


def main() -> None:
    with session("langchain_rag", embeddings=True):
        docs = [
            Document(page_content=p.read_text(), metadata={"source": p.name})
            for p in sorted(DATA.glob("*.md"))
        ]
        embeddings = RuncrateEmbeddings(model=embedding_model(), base_url=base_url("embeddings"))
        store = InMemoryVectorStore.from_documents(docs, embeddings)
        retriever = store.as_retriever(search_kwargs={"k": 2})
        prompt = ChatPromptTemplate.from_messages(
            [
                ("system", "Answer in one or two sentences using only this context:\n{context}"),
                ("human", "{question}"),
            ]
        )
        llm = ChatRuncrate(model=chat_model(), base_url=base_url(), temperature=0, max_tokens=120)

        def join(found: list[Document]) -> str:
            print("retrieved:", ", ".join(d.metadata["source"] for d in found))
            return "\n\n".join(d.page_content for d in found)

        chain = (
            {"context": retriever | join, "question": RunnablePassthrough()}
            | prompt
            | llm
            | StrOutputParser()
        )
        print("question:", QUESTION)
        print("answer:", chain.invoke(QUESTION))


if __name__ == "__main__":
    main()

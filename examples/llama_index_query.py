"""A LlamaIndex VectorStoreIndex query engine on Runcrate embeddings and chat.

    python examples/llama_index_query.py

Live when RUNCRATE_API_KEY is set, else it replays cassettes/examples/llama_index_query.yaml
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
from llama_index.core import Settings, SimpleDirectoryReader, VectorStoreIndex

from llama_index_runcrate import RuncrateEmbedding, RuncrateLLM

DATA = Path(__file__).parent / "data"
QUESTION = "Which headers report Runcrate's rate limits?"


def main() -> None:
    with session("llama_index_query", embeddings=True):
        Settings.llm = RuncrateLLM(
            model=chat_model(), base_url=base_url(), temperature=0, max_tokens=120
        )
        Settings.embed_model = RuncrateEmbedding(
            model_name=embedding_model(), base_url=base_url("embeddings")
        )
        # Only the file name as metadata: an absolute path would change the embedded text (and
        # the recorded requests) from machine to machine.
        documents = SimpleDirectoryReader(
            str(DATA), file_metadata=lambda path: {"file_name": Path(path).name}
        ).load_data()
        for doc in documents:
            doc.id_ = doc.metadata["file_name"]
        documents.sort(key=lambda d: d.id_)
        index = VectorStoreIndex.from_documents(documents)
        engine = index.as_query_engine(similarity_top_k=2)
        response = engine.query(QUESTION)
        print("question:", QUESTION)
        print(
            "sources:",
            ", ".join(sorted(n.node.metadata.get("file_name", "?") for n in response.source_nodes)),
        )
        print("answer:", str(response).strip())


if __name__ == "__main__":
    main()

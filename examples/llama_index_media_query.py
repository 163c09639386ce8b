"""A LlamaIndex query engine over transcribed audio, on Runcrate: speech made by the speech
tool, transcribed by the reader, indexed, asked.

    python examples/llama_index_media_query.py

Three short voice notes are spoken with ``RuncrateToolSpec``'s speech tool (saved as MP3s),
transcribed by ``RuncrateTranscriptionReader`` into documents, indexed with
``RuncrateEmbedding`` and asked about with ``RuncrateLLM``.

Live when RUNCRATE_API_KEY is set, else it replays cassettes/examples/llama_index_media_query.yaml
(offline; recorded with real speech and transcription models). Settings: RUNCRATE_BASE_URL
(chat), RUNCRATE_EMBEDDINGS_BASE_URL and RUNCRATE_MEDIA_BASE_URL (default: RUNCRATE_BASE_URL),
RUNCRATE_MODEL (chat model), RUNCRATE_EMBEDDING_MODEL (embedding model).
"""

from __future__ import annotations

import os
import tempfile

from _replay import base_url, chat_model, embedding_model, session
from llama_index.core import Settings, VectorStoreIndex
from llama_index.core.base.llms.types import AudioBlock

from llama_index_runcrate import (
    RuncrateEmbedding,
    RuncrateLLM,
    RuncrateToolSpec,
    RuncrateTranscriptionReader,
)

NOTES = [
    "The design review moves to Thursday at two in the afternoon.",
    "Maria will present the new billing dashboard at the review.",
    "The release is planned for the last Friday of the month.",
]
QUESTION = "When is the design review?"


def main() -> None:
    os.chdir(tempfile.mkdtemp(prefix="runcrate-media-query-"))  # relative, same paths anywhere
    with session("llama_index_media_query", embeddings=True, media=True):
        speak = RuncrateToolSpec(base_url=base_url("media"), save_dir="notes")
        files = []
        for note in NOTES:
            blocks = speak.text_to_speech(note)
            audio = next(b for b in blocks if isinstance(b, AudioBlock))
            files.append(str(audio.path))
            print("spoke:", audio.path)
        reader = RuncrateTranscriptionReader(base_url=base_url("media"), language="en")
        documents = reader.load_data(files)
        for doc in documents:
            doc.id_ = doc.metadata["source"]
            # What was said is what counts; the metadata (file, duration, model) stays out of
            # the embedded and the prompted text.
            doc.excluded_embed_metadata_keys = list(doc.metadata)
            doc.excluded_llm_metadata_keys = list(doc.metadata)
            print(f"heard ({doc.metadata['duration']} s): {doc.text}")
        Settings.llm = RuncrateLLM(
            model=chat_model(), base_url=base_url(), temperature=0, max_tokens=80
        )
        Settings.embed_model = RuncrateEmbedding(
            model_name=embedding_model(), base_url=base_url("embeddings")
        )
        index = VectorStoreIndex.from_documents(documents)
        response = index.as_query_engine(similarity_top_k=2).query(QUESTION)
        print("question:", QUESTION)
        print("sources:", ", ".join(n.node.metadata["source"] for n in response.source_nodes))
        print("answer:", str(response).strip())


if __name__ == "__main__":
    main()

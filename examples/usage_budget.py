"""What a LangChain run costs, a budget that stops it, and the account's balance.

    python examples/usage_budget.py

Live when RUNCRATE_API_KEY is set, else it replays cassettes/examples/usage_budget.yaml
(offline; its billing answers come from a stand-in ledger with made-up figures). Its first
line, on stderr, says which. Settings:
    RUNCRATE_BASE_URL             chat (default https://api.runcrate.ai/v1)
    RUNCRATE_EMBEDDINGS_BASE_URL  embeddings (default: RUNCRATE_BASE_URL)
    RUNCRATE_BILLING_URL          billing API (default https://runcrate.ai/api/v1)
    RUNCRATE_MODEL                chat model (default deepseek/deepseek-v3.2)
    RUNCRATE_EMBEDDING_MODEL      embedding model (default BAAI/bge-m3)
The prices below are made up: put your models' prices from Runcrate there.
"""

from __future__ import annotations

from _replay import base_url, billing_url, chat_model, embedding_model, session
from langchain_core.prompts import ChatPromptTemplate

from langchain_runcrate import (
    BudgetExceededError,
    ChatRuncrate,
    RuncrateBilling,
    RuncrateEmbeddings,
    get_runcrate_callback,
)

NOTES = [
    "Runcrate bills by usage, from prepaid credits.",
    "A request made after the credits run out gets HTTP 402.",
    "The billing API reports the balance and the usage between two dates.",
]
QUESTION = "What happens when the credits run out?"


def main() -> None:
    with session("usage_budget", embeddings=True):
        # USD per million tokens, made up. (One id when both models are the same one.)
        prices = {embedding_model(): {"input": 0.02}, chat_model(): {"input": 0.28, "output": 1.10}}
        llm = ChatRuncrate(model=chat_model(), base_url=base_url(), temperature=0, max_tokens=40)
        embeddings = RuncrateEmbeddings(model=embedding_model(), base_url=base_url("embeddings"))

        # 1. What a small retrieval + answer costs: embeddings and chat in one count.
        with get_runcrate_callback(prices=prices) as cb:
            vectors = embeddings.embed_documents(NOTES)
            query = embeddings.embed_query(QUESTION)
            scores = [sum(a * b for a, b in zip(v, query, strict=True)) for v in vectors]
            best = NOTES[scores.index(max(scores))]
            prompt = ChatPromptTemplate.from_messages(
                [("system", "Answer in one sentence from: {note}"), ("human", "{question}")]
            )
            answer = (prompt | llm).invoke({"note": best, "question": QUESTION})
        print("answer:", answer.content)
        print(cb)
        print(f"{cb.successful_requests} requests, {cb.total_tokens} tokens, ${cb.total_cost:.6f}")

        # 2. A hard stop: questions until the next one could pass $0.0002.
        asked = 0
        with get_runcrate_callback(prices=prices, budget=0.0002) as capped:
            try:
                for i in range(20):
                    llm.invoke(f"In three words: fact number {i} about prime numbers.")
                    asked += 1
            except BudgetExceededError as stop:
                print("stopped:", stop)
        print(f"answered {asked} of 20 for ${capped.total_cost:.6f} (budget $0.0002)")

        # 3. The account itself.
        billing = RuncrateBilling(base_url=billing_url())
        balance = billing.balance()
        print(
            f"credits left: {balance.credits_balance}"
            f" (not yet settled: {balance.active_usage_cost})"
        )


if __name__ == "__main__":
    main()

"""Answer quality and speed: how often `cables ask` quotes the sentence that answers a development question, how
often it refuses off-topic questions, and its time per question, with the stored sentence vectors (the
default) and with every candidate sentence embedded afresh (what answers did before), in one run.

    .venv/bin/python bench/answers.py --home STORE [bench/devset.jsonl]

"Quoted" means a statement of the answer contains the question's `answer_span` (whitespace-normalised) or is
contained in it. The off-topic questions are below: a cable store should answer none of them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OFF_TOPIC = (
    "What is the best recipe for chocolate cake?", "How do I fix a flat bicycle tyre?",
    "Who won the 1998 football world cup final?", "What is the boiling point of water at altitude?",
    "Recommend a good science fiction novel", "How many calories are in a banana?",
    "What is the capital of Australia?", "How do I train a puppy to sit?", "Explain the rules of cricket",
    "What is photosynthesis?", "Best way to learn the guitar", "How tall is Mount Everest?",
    "What does a quantum computer do?", "How to bake sourdough bread", "Which planet has the most moons?",
    "How do vaccines work in the body?", "What is the plot of Hamlet?", "How do I change a car tyre?",
    "What is the speed of light?", "Who painted the Mona Lisa?",
)


def measure(library, items: list[dict]) -> dict:
    from qa.evaluate import normalise
    from qa.filters import Filters

    quoted = answered = 0
    started = time.perf_counter()
    for item in items:
        answer = library.ask(item["question"], filters=Filters.from_dict(item.get("filters") or {}))
        answered += answer.answered
        span = normalise(item["answer_span"])
        quoted += any(span in normalise(s.text) or normalise(s.text) in span for s in answer.statements)
    ms = (time.perf_counter() - started) * 1000 / len(items)
    refused = sum(not library.ask(question).answered for question in OFF_TOPIC)
    return {"quoted": quoted, "answered": answered, "questions": len(items), "off_topic_refused": refused,
            "off_topic": len(OFF_TOPIC), "ms_per_ask": round(ms, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("questions", nargs="?", default=str(ROOT / "bench" / "devset.jsonl"))
    parser.add_argument("--home", required=True)
    args = parser.parse_args()
    from qa.library import Library

    library = Library(args.home)
    library.load()
    items = [json.loads(line) for line in Path(args.questions).read_text().splitlines() if line.strip()]
    library.ask(items[0]["question"])  # warm-up
    rows = {"stored sentence vectors (default)": measure(library, items)}
    from qa.store import SentenceVectors

    store = library.store
    stored = store.sentence_vectors
    none = SentenceVectors.of([], store.vector_dim() or 0)
    store.sentence_vectors = lambda ids: none
    rows["every candidate sentence embedded"] = measure(library, items)  # the fallback path, as before
    store.sentence_vectors = stored
    library.close()
    print("| sentence similarity from | span quoted | answered | off-topic refused | ms per ask |")
    print("|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['quoted']} of {r['questions']} | {r['answered']} | {r['off_topic_refused']} of "
              f"{r['off_topic']} | {r['ms_per_ask']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

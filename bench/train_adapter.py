"""Train the cables adapter: LoRA factors on all-MiniLM-L6-v2 from questions about cable paragraphs.

    .venv/bin/python bench/train_adapter.py --home STORE --out embeddings/adapters/minilm-l6-cables.npz \
        bench/trainset/part-{1,2,3,4,5,7,8,9,10,11,12}.jsonl

(the committed adapter: defaults, part 6 held out to choose the fusion weights and to report on; ~40 min).

STORE must hold the cables the questions name (`cables ingest ../shared/corpus/cablegate-html --home STORE`).
Each question is paired with its paragraph, embedded exactly as ingest embeds it (cable context, first window),
against in-batch negatives and `--negatives` other paragraphs of the same cable (the hard part: telling a
cable's paragraphs apart). Queries get the glossary expansion that search gives them. Only low-rank factors
of the attention and feed-forward layers are trained; the base model stays as bundled. The questions are
over cables none of which `bench/devset.jsonl` asks about, so the development set stays held out.
CPU only: a step of 16 questions takes 3 s (Zen 5, AVX-512) to 11 s (Zen 3, AVX2) on two cores.
`--init` goes on from a trained adapter (how the committed one took in parts 13-17 and the cleaner texts).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LAYERS = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
          "intermediate.dense", "output.dense")


def examples(home: Path, files: list[Path], negatives_from: str = "cable") -> list[tuple[str, str, list[str]]]:
    """(query text, paragraph text, other paragraphs of its cable) per question, texts as search/ingest make them."""
    from qa import glossary
    from qa.evaluate import normalise
    from qa.ingest import embedding_text, indexable
    from qa.library import Library

    library = Library(home)
    out = []
    try:
        for path in files:
            for line in path.read_text(encoding="utf-8").splitlines():
                if not line.strip():
                    continue
                q = json.loads(line)
                cable = library.store.cable(q["cable_id"])
                if cable is None:
                    raise SystemExit(f"{path}: {q['qid']}: cable {q['cable_id']} is not in {home}")
                paragraphs = [p for p in cable.paragraphs if indexable(p)]
                positive = [p for p in paragraphs if p.label == str(q["para"])]
                if not positive:
                    raise SystemExit(f"{path}: {q['qid']}: {q['cable_id']} has no paragraph {q['para']}")
                span = normalise(q["answer_span"])
                others = [embedding_text(cable, p) for p in paragraphs
                          if p.label != str(q["para"]) and span not in normalise(p.text)]
                out.append((glossary.expand_for_embedding(q["question"]), embedding_text(cable, positive[0]), others))
    finally:
        library.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("questions", nargs="+", type=Path)
    parser.add_argument("--home", type=Path, required=True, help="a store holding the questions' cables")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--negatives", type=int, default=3, help="other paragraphs of the same cable per question")
    parser.add_argument("--max-tokens", type=int, default=128, help="the window ingest embeds")
    parser.add_argument("--scale", type=float, default=20.0, help="similarity scale of the contrastive loss")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init", type=Path, help="an adapter to go on training (same rank)")
    args = parser.parse_args()
    for flag in ("epochs", "lr", "rank", "batch", "max_tokens", "scale"):
        if getattr(args, flag) <= 0:
            parser.error(f"--{flag.replace('_', '-')} must be above 0 (got {getattr(args, flag)})")

    import torch
    from transformers import AutoModel, AutoTokenizer

    from embeddings.model import BASE_MODEL, resolve_model_path

    random.seed(args.seed)
    torch.manual_seed(args.seed)
    data = examples(args.home, args.questions)
    print(f"{len(data)} questions from {len(args.questions)} files", flush=True)
    if not data:
        raise SystemExit(f"{args.home}: none of the questions' paragraphs is in this store; ingest their cables first")
    base = resolve_model_path(BASE_MODEL)[1]
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModel.from_pretrained(base)
    for parameter in model.parameters():
        parameter.requires_grad = False
    adapted = {}
    for number, layer in enumerate(model.encoder.layer):
        for path in LAYERS:
            owner_path, _, attribute = path.rpartition(".")
            owner = layer.get_submodule(owner_path)
            lora = LoRA(torch, getattr(owner, attribute), args.rank)
            setattr(owner, attribute, lora)
            adapted[f"encoder.layer.{number}.{path}"] = lora
    if args.init:
        with np.load(args.init) as start:
            for name, lora in adapted.items():
                for factor in ("A", "B"):
                    value = start.get(f"{name}.{factor}")
                    current = getattr(lora, factor)
                    if value is None or value.shape != tuple(current.shape):
                        raise SystemExit(f"{args.init}: no {name}.{factor} of shape {tuple(current.shape)}; pass the "
                                         f"--rank it was trained with (it must be an adapter for {BASE_MODEL})")
                    current.data = torch.from_numpy(value.astype(np.float32))
        print(f"going on from {args.init}", flush=True)
    trainable = [p for lora in adapted.values() for p in (lora.A, lora.B)]
    print(f"{sum(p.numel() for p in trainable)} trainable parameters (rank {args.rank})", flush=True)

    def encode(texts: list[str], length: int):
        batch = tokenizer(texts, padding=True, truncation=True, max_length=length, return_tensors="pt")
        states = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        return torch.nn.functional.normalize((states * mask).sum(1) / mask.sum(1).clamp(min=1e-9), dim=-1)

    optimiser = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=0.01)
    steps = int(math.ceil(len(data) / args.batch) * args.epochs)
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: min(1.0, (s + 1) / warmup) * (steps - s) / steps)
    model.train()
    step, started = 0, time.time()
    while step < steps:
        random.shuffle(data)
        for start in range(0, len(data), args.batch):
            if step >= steps:
                break
            batch = data[start:start + args.batch]
            queries = encode([q for q, _, _ in batch], 64)
            documents = [p for _, p, _ in batch]
            for _, _, others in batch:
                documents += random.sample(others, min(args.negatives, len(others)))
            scores = queries @ encode(documents, args.max_tokens).T * args.scale
            loss = torch.nn.functional.cross_entropy(scores, torch.arange(len(batch)))
            loss.backward()
            optimiser.step()
            schedule.step()
            optimiser.zero_grad()
            step += 1
            if step % 20 == 0 or step == steps:
                print(f"step {step}/{steps}  loss {loss.item():.3f}  {time.time() - started:.0f} s", flush=True)
    factors = {"scale": np.float32(1.0)}
    for name, lora in adapted.items():
        factors[f"{name}.A"] = lora.A.detach().numpy().astype(np.float16)
        factors[f"{name}.B"] = lora.B.detach().numpy().astype(np.float16)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "wb") as handle:  # np.savez would add ".npz" to a name without it
        np.savez_compressed(handle, **factors)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")
    return 0


class LoRA:
    """y = W x + B A x: a frozen linear layer plus trainable low-rank factors (B starts at zero)."""

    def __new__(cls, torch, linear, rank: int):
        class _LoRA(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.linear = linear
                self.A = torch.nn.Parameter(torch.randn(rank, linear.in_features) / math.sqrt(linear.in_features))
                self.B = torch.nn.Parameter(torch.zeros(linear.out_features, rank))

            def forward(self, x):
                return self.linear(x) + (x @ self.A.T) @ self.B.T

        return _LoRA()


if __name__ == "__main__":
    sys.exit(main())

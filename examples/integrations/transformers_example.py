"""Hugging Face Transformers with trackd: a tiny BERT, made locally (nothing downloaded),
trained on CPU for a few steps and logged as one run.

    pip install -e '.[dev]'         # or: pip install trackd transformers accelerate
    python examples/integrations/transformers_example.py

Offline unless ``TRACKD_BASE_URL``/``TRACKD_API_KEY`` point at a server (``trackd login``).
"""

from __future__ import annotations

from typing import Any

import torch
import transformers
from trackd.integrations.transformers import TrackdCallback


class Examples(torch.utils.data.Dataset):
    """Random token sequences labelled by whether token 5 appears in them."""

    def __init__(self, n: int) -> None:
        self.ids = torch.randint(1, 20, (n, 8), generator=torch.Generator().manual_seed(n))

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, Any]:
        ids = self.ids[i]
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": int(5 in ids)}


def main() -> None:
    config = transformers.BertConfig(
        vocab_size=20, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=37, max_position_embeddings=16, num_labels=2,
    )  # fmt: skip
    args = transformers.TrainingArguments(
        output_dir="hf-example-out", report_to="none", use_cpu=True, max_steps=20,
        logging_steps=2, eval_strategy="steps", eval_steps=10, save_strategy="no",
    )  # fmt: skip
    callback = TrackdCallback(project="transformers-example", log_model="end")
    trainer = transformers.Trainer(
        model=transformers.BertForSequenceClassification(config),
        args=args,
        train_dataset=Examples(64),
        eval_dataset=Examples(16),
        callbacks=[callback],
    )
    trainer.train()
    print(f"run {callback.run.id}: {callback.run.dir}")


if __name__ == "__main__":
    main()

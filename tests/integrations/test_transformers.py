"""The Transformers callback, end to end: a real ``transformers.Trainer`` trains a tiny BERT
made locally (no hub download) on CPU for a few steps with ``TrackdCallback``; the test
reads back from a real server what landed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

transformers = pytest.importorskip(
    "transformers", reason="transformers is not installed (pip install -e '.[dev]')"
)
torch = pytest.importorskip("torch")

from trackd.integrations.transformers import STEP_KEY, TrackdCallback  # noqa: E402

from tests.e2e.conftest import Remote  # noqa: E402
from tests.integrations.conftest import files, wait_for  # noqa: E402

STEPS = 6
EVAL_EVERY = 3


class Examples(torch.utils.data.Dataset):  # type: ignore[misc,name-defined]
    """Token sequences whose label is whether token 5 is in them."""

    def __init__(self, n: int) -> None:
        gen = torch.Generator().manual_seed(0)
        self.ids = torch.randint(1, 20, (n, 8), generator=gen)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, Any]:
        ids = self.ids[i]
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": int(5 in ids)}


def _model() -> Any:
    config = transformers.BertConfig(
        vocab_size=20,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=16,
        num_labels=2,
    )
    torch.manual_seed(0)
    return transformers.BertForSequenceClassification(config)


def _trainer(tmp_path: Path, callback: TrackdCallback, **args: Any) -> Any:
    training_args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"),
        report_to="none",  # no other tracker (wandb is installed here)
        use_cpu=True,
        max_steps=STEPS,
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        logging_steps=1,
        eval_strategy="steps",
        eval_steps=EVAL_EVERY,
        disable_tqdm=True,
        run_name="tiny-bert",
        **args,
    )
    return transformers.Trainer(
        model=_model(),
        args=training_args,
        train_dataset=Examples(32),
        eval_dataset=Examples(8),
        callbacks=[callback],
    )


def test_a_training_lands_with_args_model_config_metrics_summary_and_model(
    online: Any, remote: Remote, tmp_path: Path
) -> None:
    callback = TrackdCallback(project="hf", log_model="end")
    trainer = _trainer(tmp_path, callback, save_strategy="no")
    trainer.train()
    run_id = callback.run.id
    doc = remote.run("hf", run_id)
    assert doc is not None and doc["state"] == "finished" and doc["name"] == "tiny-bert"
    config = doc["config"]
    assert config["learning_rate"] == 1e-3 and config["max_steps"] == STEPS  # arguments
    assert config["hidden_size"] == 32 and config["num_hidden_layers"] == 2  # model config
    rows = remote.history("hf", run_id)
    train = [r for r in rows if "train/loss" in r]
    assert [r["_step"] for r in train] == list(range(1, STEPS + 1))
    assert all(r[STEP_KEY] == r["_step"] for r in rows)
    assert [r["_step"] for r in rows if "eval/loss" in r] == [EVAL_EVERY, 2 * EVAL_EVERY]
    assert all("train/learning_rate" in r for r in train)
    summary = doc["summary"]
    assert summary["train_runtime"] > 0 and "train_loss" in summary
    assert summary["train/loss"] == train[-1]["train/loss"]
    assert not any("train/train_runtime" in r for r in rows)  # end figures: summary only
    saved = wait_for(lambda: files(remote, "hf", run_id))
    assert "model/config.json" in saved and "model/model.safetensors" in saved

    # evaluate() after train() continues the same run, at the same global step
    metrics = trainer.evaluate()
    callback.run.finish()
    after = remote.history("hf", run_id)
    assert after[-1]["eval/loss"] == metrics["eval_loss"]
    assert remote.run("hf", run_id)["state"] == "finished"


def test_checkpoints_are_saved_with_the_run(online: Any, remote: Remote, tmp_path: Path) -> None:
    callback = TrackdCallback(project="hf", log_model="checkpoint")
    _trainer(tmp_path, callback, save_strategy="steps", save_steps=EVAL_EVERY).train()
    run_id = callback.run.id
    saved = wait_for(lambda: files(remote, "hf", run_id))
    folders = sorted({name.split("/")[0] for name in saved})
    assert folders == [f"checkpoint-{EVAL_EVERY}", f"checkpoint-{STEPS}"]
    assert f"checkpoint-{STEPS}/model.safetensors" in saved

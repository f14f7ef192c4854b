"""examples/train_unimse.py: trains from a Parquet folder of UniMSE rows, evaluates, saves a loadable checkpoint,
resumes, and starts from a T5 checkpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForSeq2SeqLM, AutoProcessor, T5Config, T5ForConditionalGeneration

from unimse_hf import UniMSEForConditionalGeneration
from unimse_hf.data_collator import UniMSEDataCollator
from unimse_testing import REPO_ROOT, T5_VOCAB_DIR

sys.path.insert(0, str(REPO_ROOT / "examples"))
import train_unimse  # noqa: E402

ACOUSTIC_DIM, VISUAL_DIM = 5, 3


pytestmark = pytest.mark.usefixtures("single_thread_torch")


def schema_rows(split: str, count: int, seed: int) -> list[dict]:
    """Rows of the UniMSE row schema: MOSI rows (frames, word timestamps) and MELD rows (context, no visual)."""
    rng = np.random.default_rng(seed)
    rows = []
    for index in range(count):
        words = ["so", "that", "was", "great", "fun"][: 2 + index % 4]
        text = " ".join(words)
        stamps = [{"word": w, "start": 0.3 * i, "end": 0.3 * i + 0.25} for i, w in enumerate(words)]
        acoustic = rng.standard_normal((int(rng.integers(3, 9)), ACOUSTIC_DIM)).astype(np.float32).tolist()
        visual = rng.standard_normal((int(rng.integers(2, 6)), VISUAL_DIM)).astype(np.float32).tolist()
        if index % 3 == 2:
            rows.append({"id": f"meld/{split}/dia{index}_utt1", "dataset": "meld", "split": split, "text": text,
                         "context": f"Joey: hey </s> {text} </s> Ross: ok", "acoustic": acoustic, "visual": None,
                         "word_timestamps": None, "score": None, "polarity": "neutral", "meld_emotion": "joy",
                         "iemocap_emotion": "joy", "target": "neutral,0.0,joy,joy"})
        else:
            score = float(rng.uniform(-3, 3))
            polarity = "positive" if score > 0 else "negative"
            rows.append({"id": f"mosi/{split}/clip{index}", "dataset": "mosi", "split": split, "text": text,
                         "context": None, "acoustic": acoustic, "visual": visual, "word_timestamps": stamps,
                         "score": score, "polarity": polarity, "meld_emotion": "neutral",
                         "iemocap_emotion": "neutral", "target": f"{polarity},{score},neutral,neutral"})
    return rows


@pytest.fixture
def dataset_dir(tmp_path: Path) -> list[Path]:
    """One prepared folder per corpus (as examples/prepare_data.py writes them): MOSI and MELD."""
    folders = []
    for corpus in ("mosi", "meld"):
        folder = tmp_path / corpus
        folder.mkdir()
        for split, count, seed in (("train", 12, 0), ("validation", 5, 1), ("test", 4, 2)):
            rows = [row for row in schema_rows(split, count, seed) if row["dataset"] == corpus]
            Dataset.from_list(rows).to_parquet(str(folder / f"{split}.parquet"))
        folders.append(folder)
    return folders


def common_argv(dataset_dir: list[Path], output_dir: Path) -> list[str]:
    return ["--dataset_dir", *map(str, dataset_dir), "--output_dir", str(output_dir), "--tokenizer_dir", str(T5_VOCAB_DIR),
            "--use_cpu", "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "4",
            "--report_to", "none", "--disable_tqdm", "true", "--seed", "0", "--logging_steps", "1",
            "--generation_max_new_tokens", "32"]


def test_cli_trains_evaluates_and_saves_a_loadable_checkpoint_and_processor(dataset_dir, tmp_path):
    output_dir = tmp_path / "run"
    argv = ["--tiny", "--do_train", "--do_eval", "--do_predict", "--max_steps", "3", "--save_strategy", "no",
            "--config_overrides", "cl_label_weight=0.1,trainable_t5_blocks=[1]"]
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(REPO_ROOT)]))}
    result = subprocess.run([sys.executable, str(REPO_ROOT / "examples" / "train_unimse.py"),
                             *argv, *common_argv(dataset_dir, output_dir)],
                            cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]

    eval_metrics = json.loads((output_dir / "eval_results.json").read_text())
    test_metrics = json.loads((output_dir / "test_results.json").read_text())
    assert eval_metrics["eval_mosi_num_samples"] + eval_metrics["eval_meld_num_samples"] == 5
    assert {"test_mosi_mae", "test_meld_weighted_f1", "test_mean_primary"} <= set(test_metrics)
    predictions = [json.loads(line) for line in (output_dir / "test_predictions.jsonl").read_text().splitlines()]
    test_rows = schema_rows("test", 4, 2)
    assert [p["id"] for p in predictions] == [r["id"] for c in ("mosi", "meld") for r in test_rows if r["dataset"] == c]

    model = AutoModelForSeq2SeqLM.from_pretrained(output_dir).eval()
    processor = AutoProcessor.from_pretrained(output_dir)
    assert type(model) is UniMSEForConditionalGeneration
    assert (model.config.acoustic_dim, model.config.visual_dim) == (ACOUSTIC_DIM, VISUAL_DIM)
    assert model.config.cl_label_weight == 0.1 and model.config.trainable_t5_blocks == [1]
    assert (output_dir / "modeling_unimse.py").is_file() and (output_dir / "processor_config.json").is_file()
    batch = UniMSEDataCollator(processor)(schema_rows("test", 4, 2))
    batch.pop("labels")
    generated = model.generate(**batch, max_new_tokens=5)
    assert generated.shape[0] == 4


def test_resume_from_latest_checkpoint_continues_to_max_steps(dataset_dir, tmp_path):
    output_dir = tmp_path / "run"
    first = train_unimse.main(["--tiny", "--do_train", "--max_steps", "2", "--save_strategy", "steps",
                               "--save_steps", "2", *common_argv(dataset_dir, output_dir)])
    assert first.state.global_step == 2 and (output_dir / "checkpoint-2").is_dir()
    resumed = train_unimse.main(["--tiny", "--do_train", "--max_steps", "4", "--save_strategy", "no",
                                 "--resume_from_checkpoint", "latest", *common_argv(dataset_dir, output_dir)])
    assert resumed.state.global_step == 4
    # Steps 1-2 come from the checkpoint's trainer state, 3-4 were trained after resuming (none twice).
    assert [entry["step"] for entry in resumed.state.log_history if "loss" in entry] == [1, 2, 3, 4]


def test_training_starts_from_a_t5_checkpoint_with_its_weights(dataset_dir, tmp_path):
    torch.manual_seed(0)
    t5 = T5ForConditionalGeneration(T5Config(d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                                             decoder_start_token_id=0))
    t5.save_pretrained(tmp_path / "t5")
    trainer = train_unimse.main(["--model_name_or_path", str(tmp_path / "t5"), "--do_train", "--max_steps", "1",
                                 "--config_overrides", "trainable_t5_blocks=[1]", "--save_strategy", "no", *common_argv(dataset_dir, tmp_path / "run")])
    model = trainer.model
    assert type(model) is UniMSEForConditionalGeneration
    assert (model.config.d_model, model.config.acoustic_dim, model.config.visual_dim) == (32, ACOUSTIC_DIM, VISUAL_DIM)
    frozen = "encoder.block.0.layer.0.SelfAttention.q.weight"  # block 0 is not trainable: unchanged from T5
    assert torch.equal(model.state_dict()[frozen], t5.state_dict()[frozen])
    assert torch.equal(model.shared.weight, t5.shared.weight)


def test_grammar_constrained_loss_gives_the_model_each_target_positions_grammar_candidates(dataset_dir, tmp_path):
    trainer = train_unimse.main(["--tiny", "--do_train", "--max_steps", "2", "--save_strategy", "no",
                                 "--grammar_constrained_loss", "true", *common_argv(dataset_dir, tmp_path / "run")])
    batch = next(iter(trainer.get_train_dataloader()))
    assert batch["label_candidate_ids"].shape[:2] == batch["labels"].shape
    logged = [entry["lm_loss"] for entry in trainer.state.log_history if "lm_loss" in entry]
    assert len(logged) == 2 and all(np.isfinite(logged))
    with torch.no_grad():
        out = trainer.model(**{k: v.to(trainer.model.device) for k, v in batch.items()})
    assert out.logits.shape == batch["label_candidate_ids"].shape  # the loss was taken over the candidates


def test_grammar_constrained_loss_refuses_unstructured_evaluation(dataset_dir, tmp_path):
    with pytest.raises(ValueError, match="--grammar_constrained_loss.*--generation_structured False"):
        train_unimse.main(["--tiny", "--do_train", "--max_steps", "1", "--grammar_constrained_loss", "true",
                           "--generation_structured", "false", *common_argv(dataset_dir, tmp_path / "run")])


def test_config_overrides_parse_json_values_and_lists():
    parsed = train_unimse.parse_config_overrides("cl_weight_ta=0.3,trainable_t5_blocks=[10, 11],missing_modality=learned")
    assert parsed == {"cl_weight_ta": 0.3, "trainable_t5_blocks": [10, 11], "missing_modality": "learned"}
    with pytest.raises(ValueError, match="key=value"):
        train_unimse.parse_config_overrides("cl_weight_ta")


def test_accelerate_loop_example_gives_the_trainers_loss_parts_on_the_same_batch(tmp_path):
    """examples/train_accelerate_loop.py (no Trainer, the model's loss) and train_unimse.py (UniMSETrainer) log the
    same loss parts for one step on the same batch from the same initial weights, the label-aware term on."""
    import train_accelerate_loop

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    rows = [row for row in schema_rows("train", 6, seed=0) if row["dataset"] == "mosi"]
    Dataset.from_list(rows).to_parquet(str(data_dir / "train.parquet"))
    shared = ["--tiny", "--config_overrides", "dropout_rate=0.0,modality_dropout=0.0,cl_label_weight=0.2",
              "--dataset_dir", str(data_dir), "--tokenizer_dir", str(T5_VOCAB_DIR), "--seed", "0"]
    loop = train_accelerate_loop.main([*shared, "--output_dir", str(tmp_path / "loop"), "--batch_size", str(len(rows)),
                                       "--max_steps", "1", "--cpu"])
    trainer = train_unimse.main([*shared, "--output_dir", str(tmp_path / "trainer"), "--do_train", "--max_steps", "1",
                                 "--per_device_train_batch_size", str(len(rows)), "--use_cpu", "--report_to", "none",
                                 "--disable_tqdm", "true", "--logging_steps", "1", "--save_strategy", "no"])
    logged = next(entry for entry in trainer.state.log_history if "loss" in entry)
    assert set(loop[0]) - {"step"} == {"lm_loss", "cl_ta", "cl_tv", "cl_label"}
    for name in ("lm_loss", "cl_ta", "cl_tv", "cl_label"):
        assert loop[0][name] == pytest.approx(logged[name], rel=1e-5), name
    assert (tmp_path / "loop" / "pipeline_unimse.py").is_file() and (tmp_path / "loop" / "loss_parts.jsonl").is_file()

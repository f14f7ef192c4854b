"""Bad training input is refused before any work, naming the argument, config field or row id, with nothing
written: training arguments, train-script arguments and rows, a resume from a checkpoint whose config differs,
trainer construction and checkpoint writing. And a run that diverges exits non-zero without leaving a checkpoint
with non-finite weights as the latest complete one. Tiny models on CPU."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch
from datasets import Dataset
from safetensors.torch import load_file

from test_train_script import ACOUSTIC_DIM, VISUAL_DIM, schema_rows
from test_trainer import make_trainer, synthetic_rows, tiny_model_for_training
from unimse_hf.checkpoint import last_complete_checkpoint, push_checkpoint, save_checkpoint
from unimse_hf.hub_push_callback import HubPushCallback
from unimse_hf.trainer_unimse import UniMSETrainer, UniMSETrainingArguments
from unimse_testing import REPO_ROOT, T5_VOCAB_DIR, tiny_model, tiny_processor

sys.path.insert(0, str(REPO_ROOT / "examples"))
import train_unimse  # noqa: E402

pytestmark = pytest.mark.usefixtures("single_thread_torch")

TRAIN_SCRIPT = REPO_ROOT / "examples" / "train_unimse.py"


def files_under(folder: Path) -> dict[str, tuple[int, int]]:
    """Relative path -> (size, mtime in ns) of every file under `folder` (empty if it does not exist)."""
    if not folder.exists():
        return {}
    return {str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
            for path in folder.rglob("*") if path.is_file()}


# ---------------------------------------------------------------------------------------------- training arguments

ARGUMENT_CASES = [
    ("t5_learning_rate", -1e-4, "finite number > 0"),
    ("t5_learning_rate", math.inf, "finite number > 0"),
    ("t5_learning_rate", math.nan, "finite number > 0"),
    ("t5_learning_rate", 0.0, "finite number > 0"),
    ("t5_learning_rate", "fast", "finite number > 0"),
    ("fusion_learning_rate", -1.0, "finite number > 0"),
    ("fusion_learning_rate", math.inf, "finite number > 0"),
    ("fusion_learning_rate", math.nan, "finite number > 0"),
    ("weight_decay", -0.1, "finite number >= 0"),
    ("weight_decay", math.nan, "finite number >= 0"),
    ("optimizer_recipe", "sgd", "must be one of"),
    ("generation_max_new_tokens", 0, "int >= 1"),
    ("hub_strategy", "checkpoint", "HubPushCallback"),
]


@pytest.mark.parametrize("name, value, expected", ARGUMENT_CASES,
                         ids=[f"{name}={value!r}" for name, value, _ in ARGUMENT_CASES])
def test_bad_training_argument_is_refused_naming_it(tmp_path, name, value, expected):
    output_dir = tmp_path / "out"
    with pytest.raises(ValueError, match=f"`{name}`") as error:
        UniMSETrainingArguments(output_dir=str(output_dir), report_to="none", use_cpu=True, **{name: value})
    assert expected in str(error.value)
    assert not output_dir.exists()


# ---------------------------------------------------------------------------------------------- script arguments, rows


def write_split(folder: Path, rows: list[dict], split: str = "train") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    Dataset.from_list(rows).to_parquet(str(folder / f"{split}.parquet"))
    return folder


def mosi_rows(count: int = 8, seed: int = 0) -> list[dict]:
    return [row for row in schema_rows("train", count, seed) if row["dataset"] == "mosi"]


def with_frames(rows: list[dict], index: int, modality: str, frames: Any) -> list[dict]:
    rows[index] = {**rows[index], modality: frames}
    return rows


def wider_late_acoustic_row(tmp_path: Path) -> list[str]:
    rows = with_frames(mosi_rows(), -1, "acoustic", np.ones((4, ACOUSTIC_DIM + 2), np.float32).tolist())
    return ["--dataset_dir", str(write_split(tmp_path / "data", rows))]


def narrower_late_visual_row(tmp_path: Path) -> list[str]:
    rows = with_frames(mosi_rows(), -1, "visual", np.ones((3, VISUAL_DIM - 1), np.float32).tolist())
    return ["--dataset_dir", str(write_split(tmp_path / "data", rows))]


def ragged_frames_in_a_row(tmp_path: Path) -> list[str]:
    rows = with_frames(mosi_rows(), 2, "acoustic", [[0.0] * ACOUSTIC_DIM, [0.0] * (ACOUSTIC_DIM - 1)])
    return ["--dataset_dir", str(write_split(tmp_path / "data", rows))]


def wider_validation_row(tmp_path: Path) -> list[str]:
    folder = write_split(tmp_path / "data", mosi_rows())
    validation = with_frames(mosi_rows(4, seed=1), 1, "acoustic", np.ones((4, ACOUSTIC_DIM + 1), np.float32).tolist())
    write_split(folder, validation, split="validation")
    return ["--dataset_dir", str(folder)]


def corpora_of_different_widths(tmp_path: Path) -> list[str]:
    first = write_split(tmp_path / "first", mosi_rows())
    rows = [{**row, "id": row["id"] + "_b",
             "acoustic": np.ones((3, ACOUSTIC_DIM + 3), np.float32).tolist()} for row in mosi_rows(4, seed=2)]
    return ["--dataset_dir", str(first), str(write_split(tmp_path / "second", rows))]


def frames_that_are_not_lists(tmp_path: Path) -> list[str]:
    rows = [{**row, "acoustic": ["loud", "quiet"]} for row in mosi_rows()]
    return ["--dataset_dir", str(write_split(tmp_path / "data", rows))]


def missing_dataset_folder(tmp_path: Path) -> list[str]:
    return ["--dataset_dir", str(tmp_path / "nowhere")]


def data(tmp_path: Path) -> list[str]:
    return ["--dataset_dir", str(write_split(tmp_path / "data", mosi_rows()))]


SCRIPT_CASES: list[tuple[str, Callable[[Path], list[str]], list[str], type, list[str]]] = [
    # (id, data arguments, other arguments, error type, strings the message must contain)
    ("late row with wider acoustic frames", wider_late_acoustic_row, [], ValueError,
     ["mosi/train/clip7", "acoustic", "width 7", "train.parquet"]),
    ("late row with narrower visual frames", narrower_late_visual_row, [], ValueError,
     ["mosi/train/clip7", "visual", "width 2"]),
    ("ragged frames within a row", ragged_frames_in_a_row, [], ValueError, ["mosi/train/clip3", "acoustic", "width 4"]),
    ("validation row of another width", wider_validation_row, [], ValueError,
     ["mosi/train/clip1", "validation.parquet", "width 6"]),
    ("corpora of different widths", corpora_of_different_widths, [], ValueError, ["_b", "acoustic", "width 8"]),
    ("frames that are not lists of numbers", frames_that_are_not_lists, [], ValueError, ["`acoustic`", "lists of frames"]),
    ("missing dataset folder", missing_dataset_folder, [], FileNotFoundError, ["nowhere"]),
    ("config override without a value", data, ["--config_overrides", "cl_weight_ta"], ValueError,
     ["cl_weight_ta", "key=value"]),
    ("config override of the wrong type", data, ["--config_overrides", "pmf_bottleneck=x"], ValueError,
     ["pmf_bottleneck"]),
    ("config override of an unknown field", data, ["--config_overrides", "cl_wieght_ta=0.3"], ValueError,
     ["cl_wieght_ta", "not a UniMSEConfig field"]),
    ("tiny and a checkpoint at once", data, ["--model_name_or_path", "t5-small"], ValueError,
     ["--model_name_or_path", "--tiny"]),
    ("no training samples", data, ["--max_train_samples", "0"], ValueError, ["--max_train_samples"]),
    ("negative learning rate", data, ["--t5_learning_rate", "-0.001"], ValueError, ["`t5_learning_rate`"]),
]


@pytest.mark.parametrize("case", SCRIPT_CASES, ids=[case[0] for case in SCRIPT_CASES])
def test_bad_train_script_input_is_refused_before_training_naming_the_row_or_argument(tmp_path, case):
    _, data_arguments, extra, error_type, expected = case
    output_dir = tmp_path / "run"
    argv = ["--tiny", "--do_train", "--max_steps", "1", *data_arguments(tmp_path), *extra,
            "--output_dir", str(output_dir), "--tokenizer_dir", str(T5_VOCAB_DIR), "--use_cpu",
            "--report_to", "none", "--disable_tqdm", "true"]
    with pytest.raises(error_type) as error:
        train_unimse.main(argv)
    for text in expected:
        assert text in str(error.value), (text, str(error.value))
    assert not output_dir.exists()


def test_data_whose_frames_differ_from_the_checkpoint_dims_are_refused_naming_the_modality(tmp_path):
    checkpoint = tmp_path / "unimse"
    save_checkpoint(tiny_model(), tiny_processor(), checkpoint)  # acoustic_dim 8, the data have 5
    output_dir = tmp_path / "run"
    with pytest.raises(ValueError, match="acoustic frames have 5 features but the model expects 8"):
        train_unimse.main(["--model_name_or_path", str(checkpoint), "--do_train", "--max_steps", "1", *data(tmp_path),
                           "--output_dir", str(output_dir), "--use_cpu", "--report_to", "none"])
    assert not output_dir.exists()


# ---------------------------------------------------------------------------------------------- resume


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory) -> Path:
    """A run of one step that saved `checkpoint-1` (tiny model, default config)."""
    output_dir = tmp_path_factory.mktemp("resume") / "run"
    make_trainer(output_dir, synthetic_rows(4, seed=0), max_steps=1, save_strategy="steps", save_steps=1).train()
    assert last_complete_checkpoint(output_dir) == str(output_dir / "checkpoint-1")
    return output_dir


RESUME_CASES = [
    ({"pmf_layers": 1}, "pmf_layers (checkpoint 3, model 1)"),
    ({"cl_layer": 0}, "cl_layer (checkpoint -1, model 0)"),
    ({"pmf_activation": "relu"}, "pmf_activation (checkpoint 'sigmoid', model 'relu')"),
    ({"acoustic_dim": 9}, "acoustic_dim (checkpoint 8, model 9)"),
    ({"modality_hidden": 12}, "modality_hidden (checkpoint 16, model 12)"),
    ({"cl_weight_ta": 0.1, "d_ff": 48}, "cl_weight_ta (checkpoint 0.5, model 0.1); d_ff (checkpoint 64, model 48)"),
]


@pytest.mark.parametrize("overrides, expected", RESUME_CASES, ids=[",".join(case[0]) for case in RESUME_CASES])
def test_resuming_with_another_config_is_refused_naming_the_fields(saved_run, tmp_path, overrides, expected):
    before = files_under(saved_run)
    trainer = make_trainer(saved_run, synthetic_rows(4, seed=0), model=tiny_model_for_training(**overrides),
                           max_steps=2, save_strategy="steps", save_steps=1)
    with pytest.raises(ValueError, match="cannot resume from") as error:
        trainer.train(resume_from_checkpoint="latest")
    for part in expected.split("; "):
        assert part in str(error.value), (part, str(error.value))
    assert trainer.state.global_step == 0
    assert files_under(saved_run) == before


def test_resuming_from_a_checkpoint_with_an_unreadable_config_names_the_file(saved_run, tmp_path):
    broken = tmp_path / "checkpoint-1"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    trainer = make_trainer(tmp_path / "run", synthetic_rows(4, seed=0), max_steps=2)
    with pytest.raises(ValueError, match="cannot read the checkpoint config .*checkpoint-1/config.json"):
        trainer.train(resume_from_checkpoint=str(broken))
    assert not any((tmp_path / "run").glob("checkpoint-*"))


# ---------------------------------------------------------------------------------------------- trainer, writers


def test_a_tokenizer_instead_of_the_processor_is_refused_naming_processing_class(tmp_path):
    with pytest.raises(TypeError, match="`processing_class`"):
        UniMSETrainer(model=tiny_model_for_training(), processing_class=tiny_processor().tokenizer,
                      args=UniMSETrainingArguments(output_dir=str(tmp_path / "out"), report_to="none", use_cpu=True))


def test_an_unfrozen_model_is_refused_before_the_first_step_naming_freeze_for_fine_tuning(tmp_path):
    torch.manual_seed(0)
    from unimse_hf import UniMSEForConditionalGeneration
    from unimse_testing import tiny_config

    trainer = make_trainer(tmp_path / "out", synthetic_rows(4, seed=0),
                           model=UniMSEForConditionalGeneration(tiny_config()), save_strategy="steps", save_steps=1)
    with pytest.raises(ValueError, match=r"shared\.weight.*freeze_for_fine_tuning"):
        trainer.train()
    assert trainer.state.global_step == 0 and not any((tmp_path / "out").glob("checkpoint-*"))


@pytest.mark.parametrize("arguments, expected", [({"strategy": "end"}, "`strategy`"), ({"repo_id": ""}, "`repo_id`")])
def test_bad_hub_push_callback_argument_is_refused_naming_it(arguments, expected):
    with pytest.raises(ValueError, match=expected):
        HubPushCallback(**arguments)


def test_push_checkpoint_refuses_an_empty_repo_id_before_any_request(tmp_path):
    with pytest.raises(ValueError, match="`repo_id`"):
        push_checkpoint(tiny_model(), tiny_processor(), " ")


def test_a_checkpoint_with_non_finite_weights_is_not_written(tmp_path):
    model = tiny_model()
    with torch.no_grad():
        model.encoder_fusion[0].up_proj.weight[0, 0] = math.nan
    with pytest.raises(ValueError, match=r"encoder_fusion\.0\.up_proj\.weight"):
        save_checkpoint(model, tiny_processor(), tmp_path / "ckpt")
    assert not (tmp_path / "ckpt").exists()


# ---------------------------------------------------------------------------------------------- divergence


def run_script(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    """`train_unimse.py` for 4 steps with a checkpoint after every step, in a child process."""
    folder = write_split(tmp_path / "data", mosi_rows(8))
    argv = ["--tiny", "--do_train", "--max_steps", "4", "--save_strategy", "steps", "--save_steps", "1",
            "--dataset_dir", str(folder), "--output_dir", str(tmp_path / "run"), "--tokenizer_dir", str(T5_VOCAB_DIR),
            "--use_cpu", "--per_device_train_batch_size", "4", "--report_to", "none", "--disable_tqdm", "true",
            "--logging_steps", "1", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, str(TRAIN_SCRIPT), *argv], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=300)


def test_an_infinite_t5_learning_rate_exits_non_zero_naming_it_with_nothing_written(tmp_path):
    """`--t5_learning_rate inf` (which used to train a model with 82 of 85 tensors NaN and exit 0) is refused."""
    result = run_script(tmp_path, "--t5_learning_rate", "inf")
    assert result.returncode != 0
    assert "`t5_learning_rate` must be a finite number > 0, got inf" in result.stderr
    assert not (tmp_path / "run").exists()


def test_a_diverging_run_exits_non_zero_naming_the_non_finite_loss_and_keeps_only_finite_checkpoints(tmp_path):
    """A finite but huge learning rate makes the second step's loss non-finite: the run stops there (before the
    optimizer step) with a non-zero exit, and the latest complete checkpoint holds finite weights only."""
    result = run_script(tmp_path, "--t5_learning_rate", "1e30")
    assert result.returncode != 0
    assert "NonFiniteTrainingError: non-finite loss at step" in result.stderr, result.stderr[-3000:]
    latest = last_complete_checkpoint(tmp_path / "run")
    assert latest is not None
    for folder in (tmp_path / "run").glob("checkpoint-*"):
        weights = load_file(str(folder / "model.safetensors"))
        assert all(torch.isfinite(tensor).all() for tensor in weights.values()), folder
    assert not (tmp_path / "run" / "model.safetensors").exists()  # the final save never happened
    state = json.loads((Path(latest) / "trainer_state.json").read_text())
    assert all(math.isfinite(entry["loss"]) for entry in state["log_history"] if "loss" in entry)

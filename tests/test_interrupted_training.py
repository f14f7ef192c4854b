"""Interrupted training loses nothing: `examples/train_unimse.py` killed with SIGKILL after a checkpoint, or while a
checkpoint is being written, resumes with `--resume_from_checkpoint latest` from the newest *complete* checkpoint and
ends with the weights of an uninterrupted run. Every run is a child process (tiny model, one thread)."""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import pytest
import torch
from datasets import Dataset
from safetensors.torch import load_file
from transformers.trainer_utils import get_last_checkpoint

from test_train_script import schema_rows
from unimse_hf.checkpoint import checkpoint_problems, last_complete_checkpoint
from unimse_testing import REPO_ROOT, T5_VOCAB_DIR

MAX_STEPS = 8
KILL_STEP_RNG_SEED = 20261127
RUN_TIMEOUT_S = 180
TRAIN_SCRIPT = REPO_ROOT / "examples" / "train_unimse.py"

SLOW_SAVE_WRAPPER = """
import os, sys, time
sys.path.insert(0, os.path.join({repo_root!r}, "examples"))
import train_unimse
from unimse_hf.trainer_unimse import UniMSETrainer

save_rng_state = UniMSETrainer._save_rng_state

def save_rng_state_slowly(self, output_dir):
    # Model, optimizer and scheduler of this checkpoint are written; the RNG and trainer states are not yet.
    if self.state.global_step == {slow_step}:
        open({marker!r}, "w").close()
        time.sleep(120)
    save_rng_state(self, output_dir)

UniMSETrainer._save_rng_state = save_rng_state_slowly
train_unimse.main(sys.argv[1:])
"""


def child_environment() -> dict[str, str]:
    """This environment, one intra-op thread, and the repository importable."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}


def train_arguments(dataset_dir: Path, output_dir: Path, *extra: str) -> list[str]:
    """`train_unimse.py` arguments: tiny model (dropout on), a checkpoint after every step, `MAX_STEPS` steps."""
    return ["--tiny", "--do_train", "--max_steps", str(MAX_STEPS), "--save_strategy", "steps", "--save_steps", "1",
            "--dataset_dir", str(dataset_dir), "--output_dir", str(output_dir), "--tokenizer_dir", str(T5_VOCAB_DIR),
            "--use_cpu", "--per_device_train_batch_size", "4", "--report_to", "none", "--disable_tqdm", "true",
            "--seed", "0", "--logging_steps", "1", "--dataloader_num_workers", "0", *extra]


def run_training(dataset_dir: Path, output_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    """Run `train_unimse.py` to completion and fail with its stderr if it fails."""
    result = subprocess.run([sys.executable, str(TRAIN_SCRIPT), *train_arguments(dataset_dir, output_dir, *extra)],
                            cwd=str(output_dir.parent), env=child_environment(), capture_output=True, text=True,
                            timeout=RUN_TIMEOUT_S)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def kill_when(process: subprocess.Popen, ready: Callable[[], bool], what: str) -> None:
    """SIGKILL `process` as soon as `ready()` holds (polled every 10 ms); fail if it exits or times out first."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not ready():
        if process.poll() is not None:
            raise AssertionError(f"the run exited ({process.returncode}) before {what}:\n"
                                 f"{process.stderr.read()[-4000:] if process.stderr else ''}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL


def max_weight_difference(expected_file: Path, actual_file: Path) -> float:
    """Largest absolute difference between two safetensors files with the same tensors."""
    expected, actual = load_file(str(expected_file)), load_file(str(actual_file))
    assert expected.keys() == actual.keys()
    return max((expected[name].float() - actual[name].float()).abs().max().item() for name in expected)


def checkpoint_step(folder: Optional[str]) -> Optional[int]:
    """N of a `checkpoint-N` path (None for None)."""
    return None if folder is None else int(Path(folder).name.split("-")[1])


def logged_training_steps(checkpoint: Path) -> list[int]:
    """Steps with a training loss in a checkpoint's trainer state."""
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    return [entry["step"] for entry in state["log_history"] if "loss" in entry]


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    """A prepared MOSI+MELD folder (12 training rows: 3 steps of 4 per epoch)."""
    folder = tmp_path_factory.mktemp("prepared")
    Dataset.from_list(schema_rows("train", 12, seed=0)).to_parquet(str(folder / "train.parquet"))
    return folder


@pytest.fixture(scope="module")
def uninterrupted_weights(dataset_dir: Path, tmp_path_factory) -> Path:
    """`model.safetensors` of a run of `MAX_STEPS` steps that nothing interrupted."""
    output_dir = tmp_path_factory.mktemp("uninterrupted") / "run"
    run_training(dataset_dir, output_dir)
    initial = output_dir / "checkpoint-1" / "model.safetensors"
    assert max_weight_difference(initial, output_dir / "model.safetensors") > 1e-3  # it did train
    return output_dir / "model.safetensors"


def test_run_killed_at_a_random_step_resumes_to_the_weights_of_an_uninterrupted_run(dataset_dir, uninterrupted_weights,
                                                                                     tmp_path):
    kill_after_step = random.Random(KILL_STEP_RNG_SEED).randint(2, MAX_STEPS - 3)
    output_dir = tmp_path / "run"
    process = subprocess.Popen([sys.executable, str(TRAIN_SCRIPT), *train_arguments(dataset_dir, output_dir)],
                               cwd=str(tmp_path), env=child_environment(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    try:
        kill_when(process, lambda: not checkpoint_problems(output_dir / f"checkpoint-{kill_after_step}"),
                  f"checkpoint-{kill_after_step} is complete")
    finally:
        if process.poll() is None:
            process.kill()
        process.stderr.close()
    resume_step = checkpoint_step(last_complete_checkpoint(output_dir))
    print(f"killed after checkpoint-{kill_after_step} was complete; newest complete checkpoint: {resume_step}")
    assert kill_after_step <= resume_step < MAX_STEPS
    assert not (output_dir / "model.safetensors").exists()  # the end-of-training save never happened

    run_training(dataset_dir, output_dir, "--resume_from_checkpoint", "latest")

    difference = max_weight_difference(uninterrupted_weights, output_dir / "model.safetensors")
    print(f"resumed from checkpoint-{resume_step}: max |weight difference| = {difference:.3g}")
    assert difference <= 1e-6
    assert logged_training_steps(output_dir / f"checkpoint-{MAX_STEPS}") == list(range(1, MAX_STEPS + 1))


def test_run_killed_while_saving_a_checkpoint_resumes_from_the_previous_complete_one(dataset_dir, uninterrupted_weights,
                                                                                     tmp_path):
    """A real SIGKILL during a save: a wrapper slows `Trainer._save_rng_state` of checkpoint-`slow_step` (the model,
    optimizer and scheduler files are written, the RNG and trainer states not yet) and the test kills the process
    while it waits there. transformers' `get_last_checkpoint` would pick that folder; the next start skips it."""
    slow_step = 4
    output_dir, marker = tmp_path / "run", tmp_path / "saving-rng-state"
    wrapper = SLOW_SAVE_WRAPPER.format(repo_root=str(REPO_ROOT), slow_step=slow_step, marker=str(marker))
    process = subprocess.Popen([sys.executable, "-c", wrapper, *train_arguments(dataset_dir, output_dir)],
                               cwd=str(tmp_path), env=child_environment(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    try:
        kill_when(process, marker.exists, f"the save of checkpoint-{slow_step} is in progress")
    finally:
        if process.poll() is None:
            process.kill()
        process.stderr.close()

    incomplete = output_dir / f"checkpoint-{slow_step}"
    assert (incomplete / "model.safetensors").is_file() and (incomplete / "scheduler.pt").is_file()
    problems = checkpoint_problems(incomplete)
    assert "rng_state.pth is missing" in problems and "trainer_state.json is missing" in problems, problems
    assert get_last_checkpoint(str(output_dir)) == str(incomplete)  # what transformers would resume from
    assert last_complete_checkpoint(output_dir) == str(output_dir / f"checkpoint-{slow_step - 1}")

    resumed = run_training(dataset_dir, output_dir, "--resume_from_checkpoint", "latest", "--log_level", "info")

    assert f"Skipping incomplete checkpoint {incomplete}" in resumed.stderr
    assert f"resuming from {output_dir / f'checkpoint-{slow_step - 1}'}" in resumed.stderr
    assert not checkpoint_problems(incomplete)  # written again, completely, after resuming
    difference = max_weight_difference(uninterrupted_weights, output_dir / "model.safetensors")
    print(f"resumed from checkpoint-{slow_step - 1} after a kill mid-save: max |weight difference| = {difference:.3g}")
    assert difference <= 1e-6
    assert logged_training_steps(output_dir / f"checkpoint-{MAX_STEPS}") == list(range(1, MAX_STEPS + 1))


# ---------------------------------------------------------------------------------------------- detection


def write_checkpoint(folder: Path, step: int) -> None:
    """The files of a complete single-process checkpoint (contents are placeholders)."""
    folder.mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth"):
        (folder / name).write_bytes(b"{}")
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step, "log_history": []}))


def test_truncated_or_mismatched_newer_checkpoints_are_skipped_with_a_warning(tmp_path, caplog):
    for step in (2, 4, 6, 8, 10):
        write_checkpoint(tmp_path / f"checkpoint-{step}", step)
    state = (tmp_path / "checkpoint-10" / "trainer_state.json").read_text()
    (tmp_path / "checkpoint-10" / "trainer_state.json").write_text(state[: len(state) // 2])  # truncated write
    (tmp_path / "checkpoint-8" / "optimizer.pt").write_bytes(b"")  # created, never written
    (tmp_path / "checkpoint-6" / "trainer_state.json").write_text(json.dumps({"global_step": 5}))  # another step's
    (tmp_path / "checkpoint-20").mkdir()  # the save had only just started

    with caplog.at_level(logging.WARNING, logger="unimse_hf.checkpoint"):
        assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-4")
    skipped = [record.getMessage() for record in caplog.records]
    assert [message.split(":")[0] for message in skipped] == [
        f"Skipping incomplete checkpoint {tmp_path / f'checkpoint-{step}'}" for step in (20, 10, 8, 6)]
    assert "trainer_state.json is unreadable" in skipped[1] and "optimizer.pt is empty" in skipped[2]
    assert "global_step 5, not 6" in skipped[3]
    assert last_complete_checkpoint(tmp_path / "missing") is None


def test_sharded_weights_and_per_process_rng_states_are_required(tmp_path):
    folder = tmp_path / "checkpoint-3"
    write_checkpoint(folder, 3)
    (folder / "model.safetensors").unlink()
    (folder / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    (folder / "model-00001-of-00002.safetensors").write_bytes(b"x")
    assert checkpoint_problems(folder) == ["model-00002-of-00002.safetensors is missing"]
    (folder / "model-00002-of-00002.safetensors").write_bytes(b"x")
    assert checkpoint_problems(folder) == []
    assert checkpoint_problems(folder, world_size=2) == ["rng_state_0.pth is missing", "rng_state_1.pth is missing"]
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth"):
        (folder / name).unlink()
    assert checkpoint_problems(folder, save_only_model=True) == []


def test_trainer_resume_latest_skips_an_incomplete_newest_checkpoint(tmp_path):
    """`UniMSETrainer.train(resume_from_checkpoint=True)` resumes from the newest complete checkpoint."""
    from test_trainer import make_trainer, synthetic_rows

    rows = synthetic_rows(8, seed=3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        first = make_trainer(tmp_path, rows, max_steps=2, save_strategy="steps", save_steps=1)
        first.train()
        (tmp_path / "checkpoint-2" / "trainer_state.json").unlink()  # as if killed before writing the trainer state
        resumed = make_trainer(tmp_path, rows, max_steps=3, save_strategy="no")
        resumed.train(resume_from_checkpoint=True)
    finally:
        torch.set_num_threads(threads)
    assert resumed.state.global_step == 3
    # Step 1 comes from checkpoint-1's trainer state; steps 2 and 3 were trained after resuming.
    assert [entry["step"] for entry in resumed.state.log_history if "loss" in entry] == [1, 2, 3]

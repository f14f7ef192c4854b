"""Hub faults lose nothing: while `HubPushCallback` pushes checkpoints, the test Hub answers 500s or drops connections
on the commit, preupload and LFS endpoints. Training completes, every local checkpoint is complete and loads, the
next push uploads what a failed one missed, and no commit of the repo has a `config.json` whose `auto_map` names a
module missing from that commit. Tiny model on CPU, one thread."""

from __future__ import annotations

import json
import logging
import posixpath
import re
from pathlib import Path
from typing import Any, Optional, Union

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

from huggingface_hub import HfApi
from test_trainer import make_trainer, synthetic_rows
from unimse_hf import UniMSEForConditionalGeneration
from unimse_hf.checkpoint import checkpoint_problems, last_complete_checkpoint
from unimse_hf.hub_push_callback import HubPushCallback

FaultSpec = tuple[str, Union[int, str], Optional[str]]
"""(endpoint name in `ENDPOINT_PATTERNS`, status or "drop", HTTP method or None)."""

ENDPOINT_PATTERNS = {
    "commit": r"^/api/models/{repo}/commit/",
    "preupload": r"^/api/models/{repo}/preupload/",
    "lfs_batch": r"^/{repo}\.git/info/lfs/objects/batch$",
    "lfs_upload": r"^/lfs/[0-9a-f]{{64}}$",  # the PUT of an LFS object to the CDN port
}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Run this module's tiny trainings on one intra-op thread (faster on a busy host); restore afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class FaultyHubApi(HfApi):
    """An `HfApi` that injects faults into the test Hub when the n-th commit begins (one request each).

    `plan` maps the push number (1-based, counting every commit `HubPushCallback` starts, the end-of-training
    retry included) to the faults its requests meet. `rules` keeps (push number, endpoint, status, rule) to check
    that each fault fired.
    """

    def __init__(self, hub_server: Any, repo_id: str, plan: dict[int, list[FaultSpec]]) -> None:
        super().__init__()
        self.hub_server, self.fault_repo_id, self.plan = hub_server, repo_id, plan
        self.pushes_begun = 0
        self.rules: list[tuple[int, str, Union[int, str], Any]] = []

    def create_commit(self, *args: Any, **kwargs: Any):
        self.pushes_begun += 1
        for endpoint, status, method in self.plan.get(self.pushes_begun, []):
            pattern = ENDPOINT_PATTERNS[endpoint].format(repo=re.escape(self.fault_repo_id))
            rule = self.hub_server.inject_faults(pattern, status=status, count=1, method=method)
            self.rules.append((self.pushes_begun, endpoint, status, rule))
        return super().create_commit(*args, **kwargs)


class WaitForEachPush(TrainerCallback):
    """Waits at every save until that save's background push has finished, so that every save pushes
    (a save made while the previous push runs is not pushed)."""

    def __init__(self, pushes: HubPushCallback) -> None:
        self.pushes = pushes

    def on_save(self, args, state, control, **kwargs):
        self.pushes.wait_until_done()


def assert_every_local_checkpoint_is_complete_and_loads(output_dir: Path, max_steps: int) -> None:
    checkpoints = sorted(output_dir.glob("checkpoint-*"), key=lambda folder: int(folder.name.split("-")[1]))
    assert [folder.name for folder in checkpoints] == [f"checkpoint-{step}" for step in range(1, max_steps + 1)]
    for folder in checkpoints:
        assert checkpoint_problems(folder) == [], folder
        model = UniMSEForConditionalGeneration.from_pretrained(folder)
        saved = load_file(str(folder / "model.safetensors"))
        assert all(torch.equal(model.state_dict()[name], tensor) for name, tensor in saved.items()), folder
    assert last_complete_checkpoint(output_dir) == str(output_dir / f"checkpoint-{max_steps}")


def hub_weights(hub_server: Any, repo_id: str, path: str = "model.safetensors", revision: str = "main",
                cache_dir: Optional[Path] = None) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file in the repo, downloaded with `hf_hub_download`."""
    from huggingface_hub import hf_hub_download

    return load_file(hf_hub_download(repo_id, path, revision=revision, cache_dir=cache_dir))


def same_tensors(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> bool:
    return first.keys() == second.keys() and all(torch.equal(first[name], second[name]) for name in first)


def auto_map_problems_in_history(hub_server: Any, repo_id: str) -> tuple[int, int, list[str]]:
    """Walk every commit of the repo; for each `config.json` (root or `last-checkpoint/`) with an `auto_map`, check
    that every module it names is a file of the same folder in the same commit. Returns (commits walked, configs
    with an auto_map checked, problems)."""
    from huggingface_hub import HfApi

    api = HfApi()
    commits = api.list_repo_commits(repo_id)
    configs_checked, problems = 0, []
    for commit in commits:
        files = set(api.list_repo_files(repo_id, revision=commit.commit_id))
        for config_path in sorted(path for path in files if posixpath.basename(path) == "config.json"):
            config = json.loads(hub_server.read_file(repo_id, config_path, revision=commit.commit_id))
            if not config.get("auto_map"):
                continue
            configs_checked += 1
            folder = posixpath.dirname(config_path)
            for references in config["auto_map"].values():
                for reference in references if isinstance(references, list) else [references]:
                    if reference is None:
                        continue
                    module = reference.split("--")[-1].rsplit(".", 1)[0] + ".py"
                    if posixpath.join(folder, module) not in files:
                        problems.append(f"{commit.commit_id[:8]} ({commit.title}): {config_path} names {module}")
    return len(commits), configs_checked, problems


def fired(rules: list[tuple[int, str, Union[int, str], Any]]) -> list[tuple[int, str, Union[int, str], int]]:
    """(push, endpoint, status, times fired) of each injected rule."""
    return [(push, endpoint, status, rule.hits) for push, endpoint, status, rule in rules]


def test_every_save_pushes_survive_faults_and_push_to_hub_uploads_the_final_model(tmp_path, hub_server, hub_repo_id,
                                                                                   caplog):
    """Push 1: the commit answers 500 (lost). Push 2: preupload answers 500 and the LFS upload is dropped once each
    (huggingface_hub retries them; the push succeeds and carries what push 1 missed). Push 3: the commit connection
    is dropped. Push 4 (the last save) and the end-of-training retry (push 5): the commit fails again. Training
    completes; `trainer.push_to_hub()` (the Trainer's `hub_strategy="end"` push) then uploads the final model."""
    repo_id, max_steps = hub_repo_id(), 4
    plan = {1: [("commit", 500, "POST")],
            2: [("preupload", 500, "POST"), ("lfs_upload", "drop", "PUT")],
            3: [("commit", "drop", "POST")],
            4: [("commit", 500, "POST")],
            5: [("commit", "drop", "POST")]}
    faults = FaultyHubApi(hub_server, repo_id, plan)
    pushes = HubPushCallback(strategy="every_save", api=faults)
    output_dir = tmp_path / "out"
    trainer = make_trainer(output_dir, synthetic_rows(16, seed=0), max_steps=max_steps, save_strategy="steps",
                           save_steps=1, push_to_hub=True, hub_model_id=repo_id,
                           callbacks=[pushes, WaitForEachPush(pushes)])
    with caplog.at_level(logging.WARNING, logger="unimse_hf.hub_push_callback"):
        trainer.train()

    assert trainer.state.global_step == max_steps
    assert faults.pushes_begun == 5
    assert fired(faults.rules) == [(push, endpoint, status, 1) for push, specs in plan.items()
                                   for endpoint, status, _ in specs]
    statuses = {(record.method, record.status) for record in hub_server.find_requests(path_regex=re.escape(repo_id))}
    assert {("POST", 500), ("POST", 0)} <= statuses
    assert ("PUT", 0) in {(record.method, record.status) for record in hub_server.find_requests(
        method="PUT", server="cdn")}
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert sum("failed" in message and "training continues" in message for message in warnings) == 3, warnings
    assert sum("failed again" in message for message in warnings) == 1, warnings
    assert_every_local_checkpoint_is_complete_and_loads(output_dir, max_steps)

    # Only push 2 got through: the repo holds checkpoint-2, with the code and config push 1 failed to upload.
    commit_titles = [commit.title for commit in hub_server.commit_history(repo_id)]
    assert sum(title.startswith("Training in progress") for title in commit_titles) == 1, commit_titles
    checkpoint_2 = load_file(str(output_dir / "checkpoint-2" / "model.safetensors"))
    assert same_tensors(hub_weights(hub_server, repo_id, cache_dir=tmp_path / "cache-1"), checkpoint_2)
    assert {"config.json", "modeling_unimse.py", "configuration_unimse.py"} <= set(hub_server.list_files(repo_id))

    trainer.push_to_hub()

    final = load_file(str(output_dir / f"checkpoint-{max_steps}" / "model.safetensors"))
    assert same_tensors(load_file(str(output_dir / "model.safetensors")), final)
    assert same_tensors(hub_weights(hub_server, repo_id, cache_dir=tmp_path / "cache-2"), final)
    commits, configs_checked, problems = auto_map_problems_in_history(hub_server, repo_id)
    print(f"every_save: {commits} commits, {configs_checked} auto_map configs checked, faults {fired(faults.rules)}")
    assert configs_checked >= 2 and problems == []


def test_checkpoint_strategy_push_that_failed_is_uploaded_by_a_later_push(tmp_path, hub_server, hub_repo_id, caplog):
    """The first push's commit (model files and `last-checkpoint/` in one) answers 500, and its LFS batch request
    answers 500 once (retried). No waiting between saves, so saves made while a push runs are not pushed; the repo
    still ends with the final model and `last-checkpoint/` without any call to `push_to_hub()`."""
    repo_id, max_steps = hub_repo_id(), 3
    plan = {1: [("lfs_batch", 500, "POST"), ("commit", 500, "POST")]}
    faults = FaultyHubApi(hub_server, repo_id, plan)
    output_dir = tmp_path / "out"
    trainer = make_trainer(output_dir, synthetic_rows(12, seed=1), max_steps=max_steps, save_strategy="steps",
                           save_steps=1, callbacks=[HubPushCallback(strategy="checkpoint", repo_id=repo_id,
                                                                    api=faults)])
    with caplog.at_level(logging.WARNING, logger="unimse_hf.hub_push_callback"):
        trainer.train()

    assert trainer.state.global_step == max_steps
    assert fired(faults.rules) == [(1, "lfs_batch", 500, 1), (1, "commit", 500, 1)]
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert any("checkpoint-1" in message and "failed" in message for message in warnings), warnings
    assert_every_local_checkpoint_is_complete_and_loads(output_dir, max_steps)

    final_checkpoint = output_dir / f"checkpoint-{max_steps}"
    final = load_file(str(final_checkpoint / "model.safetensors"))
    assert same_tensors(hub_weights(hub_server, repo_id, cache_dir=tmp_path / "cache"), final)
    assert same_tensors(hub_weights(hub_server, repo_id, "last-checkpoint/model.safetensors",
                                    cache_dir=tmp_path / "cache"), final)
    pushed_state = json.loads(hub_server.read_file(repo_id, "last-checkpoint/trainer_state.json"))
    assert pushed_state["global_step"] == max_steps
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth", "modeling_unimse.py"):
        assert hub_server.read_file(repo_id, f"last-checkpoint/{name}") == (final_checkpoint / name).read_bytes()
    commits, configs_checked, problems = auto_map_problems_in_history(hub_server, repo_id)
    print(f"checkpoint: {commits} commits, {configs_checked} auto_map configs checked, pushes {faults.pushes_begun}")
    assert configs_checked >= 2 and problems == []

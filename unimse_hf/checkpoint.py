# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""UniMSE checkpoint folders: writing a complete, loadable one, pushing one to the Hub as one commit, and
telling a complete Trainer checkpoint from one a killed run left behind.

* `save_checkpoint` writes everything a Hub repo needs (weights, config with `auto_map` and `custom_pipelines`,
  every Hub module, processor files, `handler.py`, card); `complete_checkpoint_folder` adds the pipeline
  files and the card to a folder that `save_pretrained` calls wrote (the trainer uses it for each folder it
  saves); `push_checkpoint` is `save_checkpoint` into a temporary folder plus one `upload_folder` commit.
* `checkpoint_problems` / `last_complete_checkpoint` check the `checkpoint-N` folders the Trainer writes;
  `resume_config_differences` names the config fields in which a checkpoint and a model disagree.

This module is not uploaded with checkpoints.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional, Union

from huggingface_hub import CommitInfo, HfApi, ModelCard
from transformers import PretrainedConfig
from transformers.dynamic_module_utils import custom_object_save
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from .modeling_unimse import UniMSEForConditionalGeneration
from .pipeline_unimse import PIPELINE_TASK, UniMSEPipeline
from .processing_unimse import UniMSEProcessor

logger = logging.getLogger(__name__)

HUB_MODULES = (
    "configuration_unimse.py",
    "modeling_unimse.py",
    "feature_extraction_unimse.py",
    "alignment_unimse.py",
    "processing_unimse.py",
    "labels.py",
    "label_grammar.py",
    "pipeline_unimse.py",
)
"""The flat modules a checkpoint needs for `trust_remote_code` loading."""

HANDLER_FILE = "handler.py"
"""The Inference Endpoints handler every checkpoint carries (a copy of `endpoint_handler.py`)."""

CHECKPOINT_FOLDER_PATTERN = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")
TRAINER_STATE_FILE = "trainer_state.json"
TRAINING_STATE_FILES = ("optimizer.pt", "scheduler.pt")
"""Written by the Trainer for each checkpoint (single process or DDP, no DeepSpeed/FSDP)."""
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
WEIGHT_INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")

CONFIG_METADATA_FIELDS = frozenset({
    "_name_or_path", "architectures", "auto_map", "custom_pipelines", "transformers_version", "dtype",
    "torch_dtype", "model_type", "use_cache",
})
"""Config entries that describe how a checkpoint was saved or loaded, not the model; `resume_config_differences`
ignores them (`model_type` reads `t5` on a model built from T5 weights, `unimse` once saved)."""


def declare_custom_pipeline(config: PretrainedConfig) -> None:
    """Record the `multimodal-sentiment-analysis` pipeline in `config.custom_pipelines` (saved in config.json)."""
    module = UniMSEPipeline.__module__.split(".")[-1]
    pipelines = dict(getattr(config, "custom_pipelines", None) or {})
    pipelines[PIPELINE_TASK] = {"impl": f"{module}.{UniMSEPipeline.__name__}", "pt": ["AutoModelForSeq2SeqLM"]}
    config.custom_pipelines = pipelines


def write_pipeline_files(directory: Union[str, os.PathLike]) -> None:
    """Copy the pipeline module (with its relative imports) and `handler.py` for Inference Endpoints."""
    directory = Path(directory)
    custom_object_save(UniMSEPipeline, str(directory))
    shutil.copyfile(Path(__file__).with_name("endpoint_handler.py"), directory / HANDLER_FILE)


def complete_checkpoint_folder(directory: Union[str, os.PathLike], model_card: Optional[str] = None) -> Path:
    """Add what `model.save_pretrained` and `processor.save_pretrained` leave out of a checkpoint folder: the
    pipeline module with its relative imports, `handler.py` and, when given, the card (README.md).

    The config must already declare the pipeline (`declare_custom_pipeline` before saving it). Raises
    `RuntimeError` naming the missing Hub modules if the folder still lacks one afterwards.
    """
    directory = Path(directory)
    write_pipeline_files(directory)
    missing = [name for name in HUB_MODULES if not (directory / name).is_file()]
    if missing:
        raise RuntimeError(f"checkpoint in {directory} lacks Hub modules {missing}; were the model and the processor "
                           "saved there first?")
    if model_card is not None:
        (directory / "README.md").write_text(model_card, encoding="utf-8")
    return directory


def save_checkpoint(
    model: UniMSEForConditionalGeneration,
    processor: UniMSEProcessor,
    directory: Union[str, os.PathLike],
    model_card: Optional[str] = None,
) -> Path:
    """Save everything a Hub repo needs so `AutoModel`, `AutoProcessor` and `pipeline(..., trust_remote_code=True)`
    load it with nothing but transformers installed: weights (safetensors), config with `auto_map` and
    `custom_pipelines`, every Hub module, the processor files, the generation config, `handler.py` for
    Inference Endpoints and the card (README.md).

    Raises `ValueError` naming the tensors, before writing anything, if a weight is NaN or infinite.
    """
    from .training_guards import non_finite_tensor_names

    broken = non_finite_tensor_names(model.state_dict().items())
    if broken:
        raise ValueError(f"not saving a checkpoint to {directory}: {len(broken)} weight tensors are not finite "
                         f"({', '.join(broken[:5])}{', ...' if len(broken) > 5 else ''})")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    declare_custom_pipeline(model.config)
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return complete_checkpoint_folder(directory, model_card=model_card)


def push_checkpoint(
    model: UniMSEForConditionalGeneration,
    processor: UniMSEProcessor,
    repo_id: str,
    model_card: Optional[Union[str, ModelCard]] = None,
    commit_message: str = "Upload UniMSE checkpoint",
    private: Optional[bool] = None,
    token: Optional[str] = None,
    revision: Optional[str] = None,
    create_pr: bool = False,
) -> CommitInfo:
    """Push a complete checkpoint (see `save_checkpoint`) to the Hub repo `repo_id` as one commit.

    Unlike `model.push_to_hub` followed by `processor.push_to_hub` (two commits, no pipeline module, no
    `handler.py`, a template card), the repo then serves `pipeline(model=repo_id, trust_remote_code=True)`,
    Inference Endpoints and the card. Without `model_card` the card of `build_model_card` (no metrics) is
    used. The repo is created if needed; a failed upload leaves the repo as it was.
    """
    from .model_card import build_model_card

    if not isinstance(repo_id, str) or not repo_id.strip():
        raise ValueError(f"`repo_id` must be a non-empty repo name like 'user/unimse', got {repo_id!r}")
    if model_card is None:
        model_card = build_model_card(model.config, model_name=repo_id.split("/")[-1], repo_id=repo_id,
                                      task_prefix=processor.task_prefix)
    api = HfApi(token=token)
    repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
    with tempfile.TemporaryDirectory(prefix="unimse-push-") as folder:
        save_checkpoint(model, processor, folder, model_card=str(model_card))
        return api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message=commit_message,
                                 revision=revision, create_pr=create_pr)


def checkpoint_problems(checkpoint_folder: Union[str, os.PathLike], world_size: int = 1,
                        save_only_model: bool = False) -> list[str]:
    """What is missing or broken in a `checkpoint-N` folder written by the Trainer; empty when it is complete.

    Complete means: `config.json`; the weights (`model.safetensors` or `pytorch_model.bin`, or an index with
    every shard it names); unless `save_only_model`, `optimizer.pt`, `scheduler.pt` and the RNG state
    (`rng_state.pth`, or `rng_state_{rank}.pth` for each of `world_size` processes); all non-empty; and
    `trainer_state.json` parsing with `global_step == N`. transformers 5 writes these files straight into the
    final folder (no temporary folder and rename), in the order model, optimizer, scheduler, RNG states,
    trainer state, so a process killed while saving leaves the folder without (or with a truncated)
    `trainer_state.json`.
    """
    folder = Path(checkpoint_folder)
    match = CHECKPOINT_FOLDER_PATTERN.match(folder.name)
    if match is None:
        return [f"{folder.name} is not named {PREFIX_CHECKPOINT_DIR}-<step>"]
    problems: list[str] = []

    def check_file(name: str) -> None:
        path = folder / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif path.stat().st_size == 0:
            problems.append(f"{name} is empty")

    check_file("config.json")
    index_name = next((name for name in WEIGHT_INDEX_FILES if (folder / name).is_file()), None)
    if index_name is not None:
        try:
            shards = sorted(set(json.loads((folder / index_name).read_text(encoding="utf-8"))["weight_map"].values()))
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            problems.append(f"{index_name} is unreadable ({error})")
            shards = []
        for shard in shards:
            check_file(shard)
    elif not any((folder / name).is_file() for name in WEIGHT_FILES):
        problems.append(f"no model weights ({' or '.join(WEIGHT_FILES)})")
    else:
        check_file(next(name for name in WEIGHT_FILES if (folder / name).is_file()))
    if not save_only_model:
        for name in TRAINING_STATE_FILES:
            check_file(name)
        for name in (["rng_state.pth"] if world_size <= 1 else [f"rng_state_{rank}.pth" for rank in range(world_size)]):
            check_file(name)
    state_path = folder / TRAINER_STATE_FILE
    if not state_path.is_file():
        problems.append(f"{TRAINER_STATE_FILE} is missing")
    else:
        try:
            global_step = json.loads(state_path.read_text(encoding="utf-8"))["global_step"]
        except (ValueError, KeyError, TypeError) as error:
            problems.append(f"{TRAINER_STATE_FILE} is unreadable ({error!r})")
        else:
            if global_step != int(match.group(1)):
                problems.append(f"{TRAINER_STATE_FILE} has global_step {global_step}, not {match.group(1)}")
    return problems


def last_complete_checkpoint(output_dir: Union[str, os.PathLike], world_size: int = 1,
                             save_only_model: bool = False) -> Optional[str]:
    """The newest `checkpoint-N` folder of `output_dir` that is complete (see `checkpoint_problems`), or None.

    Unlike `transformers.trainer_utils.get_last_checkpoint`, which returns the newest folder whatever its
    content, this skips folders that a run killed while saving left incomplete, logging a warning that names
    each skipped folder and what it lacks.
    """
    if not os.path.isdir(output_dir):
        return None
    steps_and_folders = []
    for name in os.listdir(output_dir):
        match = CHECKPOINT_FOLDER_PATTERN.match(name)
        if match is not None and os.path.isdir(os.path.join(output_dir, name)):
            steps_and_folders.append((int(match.group(1)), os.path.join(output_dir, name)))
    for _, folder in sorted(steps_and_folders, reverse=True):
        problems = checkpoint_problems(folder, world_size=world_size, save_only_model=save_only_model)
        if not problems:
            return folder
        logger.warning(f"Skipping incomplete checkpoint {folder}: {'; '.join(problems)}")
    return None


def resume_config_differences(checkpoint_folder: Union[str, os.PathLike], config: PretrainedConfig) -> list[str]:
    """`"<field> (checkpoint <a>, model <b>)"` for every config field in which the checkpoint's `config.json`
    and `config` disagree; empty when they agree.

    Every field both know is compared, except `CONFIG_METADATA_FIELDS`; a field only one side knows (e.g. one
    a newer version removed) is not. Raises `ValueError` naming the file if `config.json` is missing or unreadable.
    """
    path = Path(checkpoint_folder) / "config.json"
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read the checkpoint config {path}: {error}") from None
    if not isinstance(saved, dict):
        raise ValueError(f"the checkpoint config {path} is not a JSON object")
    current: dict[str, Any] = config.to_dict()
    return [f"{name} (checkpoint {saved[name]!r}, model {current[name]!r})"
            for name in sorted(set(saved) & set(current) - CONFIG_METADATA_FIELDS)
            if saved[name] != current[name]]


__all__ = ["save_checkpoint", "complete_checkpoint_folder", "push_checkpoint", "declare_custom_pipeline",
           "write_pipeline_files", "checkpoint_problems", "last_complete_checkpoint", "resume_config_differences",
           "HUB_MODULES", "HANDLER_FILE"]

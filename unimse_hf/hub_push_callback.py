# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""`HubPushCallback`: push each checkpoint the Trainer saves to the Hub, without ever stopping training.

transformers' own checkpoint pushes (`hub_strategy` other than `"end"`) copy only the config and weight files
to the repo root (a root commit whose `auto_map` names modules that are not in it), make two commits per save,
skip a save while the previous push runs and never report a failed push. This callback owns the checkpoint
pushes instead, through public `huggingface_hub` calls:

* each push is **one** commit of the whole saved folder (the model files at the repo root and, for
  `strategy="checkpoint"` / `"all_checkpoints"`, the full folder under `last-checkpoint/` / `checkpoint-N/`),
  made in the background (`HfApi.run_as_future`) so training goes on while it uploads; every commit is a
  complete, loadable checkpoint;
* a push that fails (HTTP errors, dropped connections) is logged and training continues; since every push
  uploads the whole folder, the next one uploads what the failed one missed;
* a save made while the previous push is still running is not pushed (it would read files that the next
  save may rotate away); at the end of training the latest checkpoint is pushed once more, blocking, if its
  push failed or was skipped.

Use it with `hub_strategy="end"` (the Trainer then pushes nothing during training; `trainer.push_to_hub()`
still uploads the final model) or `push_to_hub=False`. This module is not uploaded with checkpoints.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Optional

from huggingface_hub import CommitOperationAdd, HfApi
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, HubStrategy

logger = logging.getLogger(__name__)

CHECKPOINT_STRATEGIES = (HubStrategy.EVERY_SAVE.value, HubStrategy.CHECKPOINT.value, HubStrategy.ALL_CHECKPOINTS.value)
"""What each push uploads: `every_save` the model files at the repo root; `checkpoint` those plus the whole folder
(optimizer, scheduler, RNG and trainer states) under `last-checkpoint/`; `all_checkpoints` under `checkpoint-N/`."""

TRAINING_STATE_PREFIXES = ("optimizer.", "scheduler.", "scaler.", "rng_state", "trainer_state.json")
"""Files of a checkpoint folder that resume training but are not part of the model (kept off the repo root)."""


class HubPushCallback(TrainerCallback):
    r"""
    Pushes every checkpoint the Trainer saves to a Hub model repo, in the background, as one commit each.

    Args:
        strategy (`str`, *optional*, defaults to `"every_save"`):
            One of `CHECKPOINT_STRATEGIES`.
        repo_id (`str`, *optional*):
            The repo; defaults to the arguments' `hub_model_id`, else the name of `output_dir` (as transformers).
            It is created at the start of training if needed (`hub_private_repo` decides its visibility).
        api (`HfApi`, *optional*):
            The client to push with (endpoint, token); defaults to `HfApi(token=args.hub_token)`.

    Pushes go to `hub_revision` of the training arguments. Only the main process pushes.
    """

    def __init__(self, strategy: str = HubStrategy.EVERY_SAVE.value, repo_id: Optional[str] = None,
                 api: Optional[HfApi] = None) -> None:
        strategy = getattr(strategy, "value", strategy)
        if strategy not in CHECKPOINT_STRATEGIES:
            raise ValueError(f"`strategy` must be one of {CHECKPOINT_STRATEGIES}, got {strategy!r}")
        if repo_id is not None and (not isinstance(repo_id, str) or not repo_id.strip()):
            raise ValueError(f"`repo_id` must be a non-empty repo name or None, got {repo_id!r}")
        self.strategy = strategy
        self.repo_id = repo_id
        self.api = api
        self._revision: Optional[str] = None
        self._latest_saved: Optional[Path] = None  # newest checkpoint folder saved
        self._latest_pushed: Optional[Path] = None  # newest checkpoint folder whose push succeeded
        self._push: Optional[Future] = None  # the background push in progress (or finished, not yet reported)
        self._push_folder: Optional[Path] = None  # the folder `_push` uploads

    # ------------------------------------------------------------------ Trainer events

    def on_init_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        self._check_trainer_does_not_push_checkpoints(args)

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       **kwargs: Any) -> None:
        self._check_trainer_does_not_push_checkpoints(args)
        if not state.is_world_process_zero:
            return
        if self.api is None:
            self.api = HfApi(token=args.hub_token)
        name = self.repo_id or args.hub_model_id or Path(args.output_dir).absolute().name
        self.repo_id = self.api.create_repo(name, private=args.hub_private_repo, exist_ok=True).repo_id
        self._revision = args.hub_revision

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        if not folder.is_dir():
            logger.warning(f"HubPushCallback: no checkpoint folder {folder} to push")
            return
        self._latest_saved = folder
        self._report_finished_push()
        if self._push is not None and not self._push.done():
            logger.info(f"Not pushing {folder}: the push of {self._push_folder} is still running; the end of "
                        "training pushes the latest checkpoint if it is not on the Hub by then")
            return
        self._push_folder = folder
        self._push = self.api.run_as_future(self.push_folder, folder, f"Training in progress, step {state.global_step}")

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                     **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        self.wait_until_done()
        latest = self._latest_saved
        if latest is None or latest == self._latest_pushed or not latest.is_dir():
            return
        logger.warning(f"{latest} is not on the Hub yet; pushing it again")
        try:
            self.push_folder(latest, f"Training in progress, step {state.global_step}")
        except Exception as error:  # noqa: BLE001 - the trained model is saved locally; a push can be made later
            logger.warning(f"Pushing {latest} to {self.repo_id} failed again ({error!r}); call "
                           "`trainer.push_to_hub()` to upload the final model")

    # ------------------------------------------------------------------ pushing

    def push_folder(self, folder: Path, commit_message: str) -> None:
        """Upload a saved checkpoint folder as one commit (blocking): the model files at the repo root and,
        with `strategy` `checkpoint` / `all_checkpoints`, every file under `last-checkpoint/` / the folder name."""
        files = sorted(path for path in Path(folder).rglob("*")
                       if path.is_file() and "__pycache__" not in path.parts)
        operations = []
        for path in files:
            relative = path.relative_to(folder).as_posix()
            if not relative.startswith(TRAINING_STATE_PREFIXES):
                operations.append(CommitOperationAdd(path_in_repo=relative, path_or_fileobj=str(path)))
            if self.strategy != HubStrategy.EVERY_SAVE.value:
                prefix = "last-checkpoint" if self.strategy == HubStrategy.CHECKPOINT.value else Path(folder).name
                operations.append(CommitOperationAdd(path_in_repo=f"{prefix}/{relative}", path_or_fileobj=str(path)))
        self.api.create_commit(repo_id=self.repo_id, operations=operations, commit_message=commit_message,
                               revision=self._revision)
        self._latest_pushed = Path(folder)

    def wait_until_done(self) -> None:
        """Wait for the background push in progress, if any, and log it if it failed."""
        if self._push is not None:
            try:
                self._push.result()
            except Exception:  # noqa: BLE001 - reported below
                pass
        self._report_finished_push()

    def _report_finished_push(self) -> None:
        """Log the finished background push once if it failed (a failed push never stops training)."""
        if self._push is None or not self._push.done():
            return
        error = "cancelled" if self._push.cancelled() else self._push.exception()
        if error is not None:
            logger.warning(f"Push of {self._push_folder} to {self.repo_id} failed ({error!r}); training continues "
                           "and a later push uploads what was missed")
        self._push = None

    @staticmethod
    def _check_trainer_does_not_push_checkpoints(args: TrainingArguments) -> None:
        strategy = getattr(args.hub_strategy, "value", args.hub_strategy)
        if args.push_to_hub and strategy != HubStrategy.END.value:
            raise ValueError(f"HubPushCallback makes the checkpoint pushes, but the training arguments also ask the "
                             f"Trainer to push them (`push_to_hub=True`, `hub_strategy={strategy!r}`): set "
                             "`hub_strategy='end'` (or `push_to_hub=False`) and pass the strategy to HubPushCallback")


__all__ = ["HubPushCallback", "CHECKPOINT_STRATEGIES"]

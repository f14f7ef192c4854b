# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""`UniMSETrainer`: `Seq2SeqTrainer` with the UniMSE objective, optimiser recipes, generation metrics and Hub pushes.

* Loss: LM cross-entropy + `cl_weight_ta`·InfoNCE(text, acoustic) + `cl_weight_tv`·InfoNCE(text, visual)
  + `cl_label_weight`·supervised contrastive term over the text embeddings (weights from the model config).
  The LM term is normalised by the number of target tokens of the whole accumulated (and, under DDP, global)
  batch, so gradient accumulation and data parallelism give the gradients of one large batch; the in-batch
  contrastive terms are per-micro-batch means divided by the accumulation steps.
* Each component is logged (`lm_loss`, `cl_ta`, `cl_tv`, `cl_label`), averaged over the logging interval.
* Optimiser: parameter groups for the trainable T5 blocks and the fusion modules, everything else frozen;
  `optimizer_recipe="official"` (Adam with coupled L2 decay, constant LR, no clipping, no warmup: reference
  B9) or `"hf"` (AdamW with the scheduler, warmup and clipping of the arguments).
* Evaluation generates, parses the universal labels and computes per-dataset metrics plus an aggregate.
* Every Hub push carries the remote code, the processor and a model card. A background checkpoint push that
  fails is logged and does not stop training; the next save pushes again, and the end of training retries once
  when the latest checkpoint is not on the Hub yet.
* `last_complete_checkpoint` finds the newest checkpoint that was written completely (a run killed while saving
  leaves an incomplete folder); `train(resume_from_checkpoint=True | "latest")` resumes from it.

This module is not uploaded with checkpoints.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from transformers import EvalPrediction, Seq2SeqTrainer, Seq2SeqTrainingArguments
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, HubStrategy, TrainOutput

from .checkpoint import declare_custom_pipeline, write_pipeline_files
from .model_card import build_model_card
from .processing_unimse import UniMSEProcessor

logger = logging.getLogger(__name__)

OPTIMIZER_RECIPES = ("official", "hf")
LOSS_COMPONENTS = ("lm_loss", "cl_ta", "cl_tv", "cl_label")
MIN_GENERATION_NEW_TOKENS = 32

CHECKPOINT_FOLDER_PATTERN = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")
TRAINER_STATE_FILE = "trainer_state.json"
TRAINING_STATE_FILES = ("optimizer.pt", "scheduler.pt")
"""Written by `Trainer._save_optimizer_and_scheduler` (single process or DDP, no DeepSpeed/FSDP)."""
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
WEIGHT_INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")

MetricsFunction = Callable[[Sequence[str], Sequence[str], Sequence[str]], dict[str, float]]
"""(generated texts, gold universal labels, dataset names) -> flat metrics dict."""


@dataclass
class UniMSETrainingArguments(Seq2SeqTrainingArguments):
    r"""
    [`Seq2SeqTrainingArguments`] with UniMSE's optimiser recipes and generation defaults.

    The two parameter groups use `t5_learning_rate` and `fusion_learning_rate`; `learning_rate` and `optim`
    are not used. `optimizer_recipe="official"` reproduces the official optimisation (reference §7.1, B9) and
    therefore overrides `lr_scheduler_type="constant"`, `warmup_steps=0` and `max_grad_norm=0` (no clipping),
    with a warning when another value was asked for. `"hf"` uses AdamW (no decay on biases and norms) with the
    scheduler, warmup and clipping given here. Defaults differing from transformers': `weight_decay=1e-4`,
    `predict_with_generate=True`, `remove_unused_columns=False` (the data collator reads raw rows).
    """

    optimizer_recipe: str = field(
        default="official",
        metadata={"help": "'official': Adam with coupled L2 weight decay, constant LR, no clipping, no warmup. "
                          "'hf': AdamW with the scheduler, warmup and clipping from these arguments.",
                  "choices": list(OPTIMIZER_RECIPES)},
    )
    t5_learning_rate: float = field(default=3e-4, metadata={"help": "Learning rate of the trainable T5 blocks."})
    fusion_learning_rate: float = field(
        default=1e-4, metadata={"help": "Learning rate of the fusion modules (LSTMs, PMF adapters, contrastive heads)."}
    )
    weight_decay: float = field(default=1e-4, metadata={"help": "Weight decay of both parameter groups."})
    generation_max_new_tokens: int = field(
        default=48,
        metadata={"help": f"Tokens generated per sample at evaluation; at least {MIN_GENERATION_NEW_TOKENS} so "
                          "that full-precision scores are not cut off (B13)."},
    )
    predict_with_generate: bool = field(default=True, metadata={"help": "Evaluate by generating labels."})
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Keep the raw row columns; `UniMSEDataCollator` builds the model inputs."}
    )

    def __post_init__(self) -> None:
        if self.optimizer_recipe not in OPTIMIZER_RECIPES:
            raise ValueError(f"`optimizer_recipe` must be one of {OPTIMIZER_RECIPES}, got {self.optimizer_recipe!r}")
        if self.generation_max_new_tokens < MIN_GENERATION_NEW_TOKENS:
            raise ValueError(f"`generation_max_new_tokens` must be >= {MIN_GENERATION_NEW_TOKENS} (B13), "
                             f"got {self.generation_max_new_tokens}")
        if self.learning_rate != 5e-5:
            logger.warning("UniMSETrainingArguments ignores `learning_rate`; set `t5_learning_rate` and "
                           "`fusion_learning_rate` instead")
        if self.optimizer_recipe == "official":
            self._apply_official_schedule()
        super().__post_init__()

    def _apply_official_schedule(self) -> None:
        official = {"lr_scheduler_type": "constant", "warmup_steps": 0, "max_grad_norm": 0.0}
        transformers_defaults = {"lr_scheduler_type": "linear", "warmup_steps": 0, "max_grad_norm": 1.0}
        for name, value in official.items():
            current = getattr(self, name)
            current = getattr(current, "value", current)
            if current != value and current != transformers_defaults[name]:
                logger.warning(f"optimizer_recipe='official' overrides {name}={current!r} with {value!r}")
            setattr(self, name, value)


class UniMSETrainer(Seq2SeqTrainer):
    r"""
    [`Seq2SeqTrainer`] for [`UniMSEForConditionalGeneration`].

    The model is frozen with `model.freeze_for_fine_tuning()` at construction. Pass the [`UniMSEProcessor`] as
    `processing_class` (it is saved with every checkpoint and parses the generated labels) and a
    [`UniMSEDataCollator`] as `data_collator`.

    Args:
        metrics_function (`Callable`, *optional*):
            `(generated_texts, references, dataset_names) -> dict` used by the built-in `compute_metrics`;
            defaults to `unimse_hf.metrics.compute_unimse_metrics` (per-dataset prefixed metrics, the overall
            `parse_failure_rate` and the aggregate `mean_primary` for `metric_for_best_model`). References are
            the eval rows' `target` column (universal label strings), dataset names their `dataset` column.
            Passing `compute_metrics` replaces the built-in computation altogether; with
            `predict_with_generate=False` evaluation reports the loss only.
        Other arguments are those of [`Seq2SeqTrainer`].
    """

    # `compute_loss` normalises the LM term by the accumulated token count and divides the contrastive terms
    # by the accumulation steps itself.
    loss_is_scaled_for_ga = True

    def __init__(self, *args: Any, metrics_function: Optional[MetricsFunction] = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.metrics_function = metrics_function
        generates = getattr(self.args, "predict_with_generate", False)
        if self.compute_metrics is None and generates and isinstance(self.processing_class, UniMSEProcessor):
            self.compute_metrics = self._compute_generation_metrics
        self.accelerator.unwrap_model(self.model).freeze_for_fine_tuning()
        self._loss_component_totals: Optional[torch.Tensor] = None
        self._metrics_rows: Any = None
        self._latest_saved_checkpoint: Optional[str] = None  # newest checkpoint handed to `_push_from_checkpoint`
        self._checkpoint_being_pushed: Optional[str] = None  # the one the jobs in `push_in_progress` upload
        self._reported_push_failures: set[Any] = set()  # failed push futures already logged

    # ------------------------------------------------------------------ training and resuming

    def train(self, resume_from_checkpoint: Optional[Union[str, bool]] = None, trial: Any = None,
              ignore_keys_for_eval: Optional[list[str]] = None, **kwargs: Any) -> TrainOutput:
        """`Trainer.train`, resuming from the newest *complete* checkpoint for `resume_from_checkpoint=True` or
        `"latest"` (transformers takes the newest folder, even one a killed save left incomplete), and pushing
        the latest checkpoint again at the end when its background push failed or was skipped."""
        if resume_from_checkpoint is True or resume_from_checkpoint == "latest":
            found = last_complete_checkpoint(self.args.output_dir, world_size=self.args.world_size,
                                             save_only_model=self.args.save_only_model)
            if found is None:
                raise ValueError(f"No complete checkpoint found in output directory ({self.args.output_dir})")
            resume_from_checkpoint = found
        output = super().train(resume_from_checkpoint=resume_from_checkpoint, trial=trial,
                               ignore_keys_for_eval=ignore_keys_for_eval, **kwargs)
        self._push_missed_checkpoint()
        return output

    # ------------------------------------------------------------------ loss

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Optional[Union[torch.Tensor, int]] = None,
    ) -> Union[torch.Tensor, tuple[torch.Tensor, Any]]:
        """LM loss plus the weighted contrastive terms (see the module docstring for the scaling)."""
        inputs = dict(inputs)
        label_ids = inputs.pop("contrastive_label_ids", None)
        if "labels" not in inputs:
            raise ValueError("UniMSETrainer.compute_loss needs `labels` (the rows' universal label `target`)")
        outputs = model(**inputs)
        config = self.accelerator.unwrap_model(model).config
        components = {"lm_loss": outputs.loss}
        if outputs.contrastive_loss_ta is not None:
            components["cl_ta"] = outputs.contrastive_loss_ta
        if outputs.contrastive_loss_tv is not None:
            components["cl_tv"] = outputs.contrastive_loss_tv
        if config.cl_label_weight > 0:
            if label_ids is None:
                raise ValueError("`cl_label_weight` > 0 needs `contrastive_label_ids` in the batch; build the "
                                 "collator with `contrastive_label_column`")
            if outputs.text_embeds is None:
                raise ValueError("`cl_label_weight` > 0 needs `cl_enabled=True` (the text contrastive projection)")
            components["cl_label"] = supervised_contrastive_loss(
                outputs.text_embeds, label_ids.to(outputs.text_embeds.device), config.cl_temperature
            )
        weights = {"cl_ta": config.cl_weight_ta, "cl_tv": config.cl_weight_tv, "cl_label": config.cl_label_weight}
        contrastive = sum(weights[name] * value for name, value in components.items() if name != "lm_loss")

        if not model.training:
            loss = outputs.loss + contrastive
        else:
            self._accumulate_loss_components(components)
            # Set by the training loop per optimizer step (fewer micro-batches at the end of an epoch).
            accumulation_steps = getattr(self, "current_gradient_accumulation_steps", 1)
            if num_items_in_batch is None:
                lm_loss = outputs.loss / accumulation_steps
            else:
                # This micro-batch's summed token losses over the target tokens of the whole accumulated batch on
                # all ranks; DDP averages gradients over ranks, hence the factor `num_processes`.
                logits = outputs.logits
                token_sum = F.cross_entropy(logits.flatten(0, 1).float(), inputs["labels"].to(logits.device).flatten(),
                                            ignore_index=-100, reduction="sum")
                lm_loss = token_sum * self.accelerator.num_processes / num_items_in_batch
            loss = lm_loss + contrastive / accumulation_steps
        return (loss, outputs) if return_outputs else loss

    def _get_num_items_in_batch(self, batch_samples: list, device: torch.device) -> Optional[torch.Tensor]:
        """Target tokens (labels != -100) of the accumulated batch, summed over ranks."""
        if not batch_samples or "labels" not in batch_samples[0]:
            return None
        count = sum(batch["labels"].ne(-100).sum() for batch in batch_samples).to(device)
        if self.args.world_size > 1:
            count = self.accelerator.gather(count).sum()
        return count

    def _accumulate_loss_components(self, components: dict[str, torch.Tensor]) -> None:
        if self._loss_component_totals is None:
            self._loss_component_totals = torch.zeros(len(LOSS_COMPONENTS), 2, device=self.args.device)
        for index, name in enumerate(LOSS_COMPONENTS):
            if name in components:
                self._loss_component_totals[index, 0] += components[name].detach().float().to(self.args.device)
                self._loss_component_totals[index, 1] += 1

    def log(self, logs: dict[str, float], start_time: Optional[float] = None) -> None:
        """Add the mean of each loss component since the last training log to a training log."""
        if "loss" in logs and self._loss_component_totals is not None:
            totals = self._loss_component_totals
            if self.accelerator.num_processes > 1:
                totals = self.accelerator.reduce(totals.clone(), reduction="sum")
            for index, name in enumerate(LOSS_COMPONENTS):
                if totals[index, 1] > 0:
                    logs[name] = (totals[index, 0] / totals[index, 1]).item()
            self._loss_component_totals.zero_()
        super().log(logs, start_time)

    # ------------------------------------------------------------------ optimisation

    def create_optimizer(self, model: Optional[nn.Module] = None) -> torch.optim.Optimizer:
        """Adam (`"official"`) or AdamW (`"hf"`) over the trainable T5 blocks and the fusion modules."""
        if self.optimizer is not None:
            return self.optimizer
        unimse = self.accelerator.unwrap_model(self.model if model is None else model)
        args = self.args
        recipe = getattr(args, "optimizer_recipe", "official")
        no_decay_names: set[str] = set()
        if recipe == "hf":
            decay_names = set(self.get_decay_parameter_names(unimse))
            no_decay_names = {name for name, _ in unimse.named_parameters() if name not in decay_names}
        groups = unimse_parameter_groups(
            unimse,
            t5_learning_rate=getattr(args, "t5_learning_rate", 3e-4),
            fusion_learning_rate=getattr(args, "fusion_learning_rate", 1e-4),
            weight_decay=args.weight_decay,
            no_decay_names=no_decay_names,
        )
        optimizer_cls = torch.optim.Adam if recipe == "official" else torch.optim.AdamW
        self.optimizer = optimizer_cls(groups, betas=(args.adam_beta1, args.adam_beta2), eps=args.adam_epsilon)
        return self.optimizer

    # ------------------------------------------------------------------ evaluation

    def evaluate(self, eval_dataset: Any = None, ignore_keys: Optional[list[str]] = None,
                 metric_key_prefix: str = "eval", **gen_kwargs: Any) -> dict[str, float]:
        """Generate labels for the eval set (at least `generation_max_new_tokens` tokens) and score them."""
        dataset = self.eval_dataset if eval_dataset is None else eval_dataset
        if isinstance(dataset, str):
            dataset = self.eval_dataset[dataset]
        self._metrics_rows = dataset
        return super().evaluate(eval_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix,
                                **self._generation_kwargs(gen_kwargs))

    def predict(self, test_dataset: Any, ignore_keys: Optional[list[str]] = None,
                metric_key_prefix: str = "test", **gen_kwargs: Any):
        """Like `evaluate` on `test_dataset`, returning the generated ids too."""
        self._metrics_rows = test_dataset
        return super().predict(test_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix,
                               **self._generation_kwargs(gen_kwargs))

    def _generation_kwargs(self, gen_kwargs: dict[str, Any]) -> dict[str, Any]:
        gen_kwargs = dict(gen_kwargs)
        if gen_kwargs.get("max_length") is None and gen_kwargs.get("max_new_tokens") is None \
                and self.args.generation_max_length is None:
            gen_kwargs["max_new_tokens"] = getattr(self.args, "generation_max_new_tokens", 48)
        return gen_kwargs

    def prediction_step(self, model: nn.Module, inputs: dict[str, Any], prediction_loss_only: bool,
                        ignore_keys: Optional[list[str]] = None, **gen_kwargs: Any):
        """`Seq2SeqTrainer.prediction_step` without the trainer-only `contrastive_label_ids`.

        Seq2SeqTrainer writes the default `max_length` (20) into the model's generation config after each
        step; it is removed again so that `max_new_tokens` alone bounds the next generation (B13).
        """
        inputs = {key: value for key, value in inputs.items() if key != "contrastive_label_ids"}
        generation_config = self.accelerator.unwrap_model(model).generation_config
        had_max_length = generation_config.max_length
        try:
            return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys=ignore_keys, **gen_kwargs)
        finally:
            if "max_new_tokens" in gen_kwargs or getattr(self, "_gen_kwargs", {}).get("max_new_tokens") is not None:
                generation_config.max_length = had_max_length

    def _compute_generation_metrics(self, prediction: EvalPrediction) -> dict[str, float]:
        """Decode, truncate the DDP padding duplicates, and score with `metrics_function`."""
        rows = self._metrics_rows
        if rows is None:
            raise ValueError("UniMSETrainer metrics need the eval rows; call `evaluate` or `predict`")
        predictions = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        # Under DDP the gathered predictions end with padding duplicates; the leading rows are in dataset order.
        predictions = np.asarray(predictions)[: len(rows)]
        pad_token_id = self.processing_class.tokenizer.pad_token_id
        predictions = np.where(predictions < 0, pad_token_id, predictions)
        generated = self.processing_class.batch_decode(predictions)
        references = _column(rows, "target")
        dataset_names = _column(rows, "dataset")
        if references is None or dataset_names is None:
            raise ValueError("UniMSETrainer's built-in metrics need `target` and `dataset` columns in the eval rows; "
                             "add them or pass `compute_metrics`")
        metrics_function = self.metrics_function
        if metrics_function is None:
            from .metrics import compute_unimse_metrics as metrics_function
        return metrics_function(generated, references, dataset_names)

    # ------------------------------------------------------------------ saving and pushing

    def _save(self, output_dir: Optional[str] = None, state_dict: Optional[dict] = None) -> None:
        """Save as transformers does, plus the pipeline declaration and files, so every checkpoint is complete."""
        model = self.accelerator.unwrap_model(self.model)
        declare_custom_pipeline(model.config)
        super()._save(output_dir, state_dict=state_dict)
        if self.args.should_save:
            write_pipeline_files(output_dir if output_dir is not None else self.args.output_dir)

    def create_model_card(self, model_name: Optional[str] = None, finetuned_from: Optional[str] = None,
                          metrics: Optional[dict[str, float]] = None, **kwargs: Any) -> None:
        """Write README.md from the project's template, with measured metrics only: `metrics` (e.g. the
        `test_*` results of `predict`) or else the latest evaluation logged during training."""
        if not self.is_world_process_zero():
            return
        model = self.accelerator.unwrap_model(self.model)
        if metrics is None:
            metrics = next((entry for entry in reversed(self.state.log_history)
                            if any(key.startswith("eval_") for key in entry)), {})
        repo_id = self.args.hub_model_id or model_name or os.path.basename(os.path.abspath(self.args.output_dir))
        extractor = getattr(self.processing_class, "feature_extractor", None)
        card = build_model_card(
            model.config, model_name=model_name or os.path.basename(repo_id), repo_id=repo_id,
            eval_metrics={k: v for k, v in metrics.items() if isinstance(v, (int, float))},
            split="test" if any(key.startswith("test_") for key in metrics) else "validation",
            datasets=sorted(set(_column(self.eval_dataset, "dataset") or [])) if self.eval_dataset is not None else (),
            base_model=finetuned_from,
            training=(f"Fine-tuned with `UniMSETrainer` ({self.args.optimizer_recipe} recipe, T5 blocks "
                      f"{model.config.trainable_t5_blocks} at lr {self.args.t5_learning_rate}, fusion modules at lr "
                      f"{self.args.fusion_learning_rate}, weight decay {self.args.weight_decay}) for "
                      f"{self.state.global_step} steps of batch {self.args.per_device_train_batch_size} "
                      f"× {self.args.gradient_accumulation_steps} accumulation × {self.args.world_size} processes."),
            acoustic_kind=getattr(extractor, "acoustic_feature_kind", "unspecified"),
            visual_kind=getattr(extractor, "visual_feature_kind", "unspecified"),
        )
        Path(self.args.output_dir).mkdir(parents=True, exist_ok=True)
        Path(self.args.output_dir, "README.md").write_text(str(card), encoding="utf-8")

    def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
        """Push as transformers does, after putting the remote code and the model card in `output_dir`.

        transformers copies only the config and weight files of the checkpoint into `output_dir`; without the
        `.py` modules the pushed `config.json`'s `auto_map` would point at files that are not in the repo.
        Each push is one commit of `output_dir` (and one of the checkpoint folder), so a failed push changes
        nothing on the Hub. A failed earlier push is logged here; this push uploads what it missed, because it
        uploads the whole folder. While an earlier push is still running nothing is copied (the background
        upload is reading those files) and, as in transformers, this save is not pushed; `train` pushes the
        latest checkpoint at the end if it was not pushed.
        """
        if not self.is_world_process_zero() or self.args.hub_strategy == HubStrategy.END:
            return
        self._latest_saved_checkpoint = checkpoint_folder
        self._report_failed_pushes()
        push_in_progress = getattr(self, "push_in_progress", None)
        push_running = push_in_progress is not None and not push_in_progress.is_done()
        if push_running and not self.args.hub_always_push:
            logger.info(f"Not pushing {checkpoint_folder}: the previous push is still running")
            return
        os.makedirs(self.args.output_dir, exist_ok=True)
        for module in glob.glob(os.path.join(checkpoint_folder, "*.py")):
            shutil.copy(module, os.path.join(self.args.output_dir, os.path.basename(module)))
        for name in ("processor_config.json", "tokenizer.json", "tokenizer_config.json"):
            if os.path.isfile(os.path.join(checkpoint_folder, name)):
                shutil.copy(os.path.join(checkpoint_folder, name), os.path.join(self.args.output_dir, name))
        self.create_model_card()
        super()._push_from_checkpoint(checkpoint_folder)
        self._checkpoint_being_pushed = checkpoint_folder

    def _report_failed_pushes(self) -> bool:
        """Log each finished background push job that failed (once); True when the current push failed.

        transformers' `PushInProgress.wait_until_done` never looks at the jobs' exceptions, so without this a
        failed push would go unnoticed.
        """
        push_in_progress = getattr(self, "push_in_progress", None)
        jobs = [] if push_in_progress is None else list(push_in_progress.jobs)
        failed = False
        for job in jobs:
            if not job.done():
                continue
            error = None if job.cancelled() else job.exception()
            if job.cancelled() or error is not None:
                failed = True
                if job not in self._reported_push_failures:
                    self._reported_push_failures.add(job)
                    logger.warning(f"Push of {self._checkpoint_being_pushed} to {self.hub_model_id} failed "
                                   f"({'cancelled' if job.cancelled() else repr(error)}); training continues and "
                                   "the next push uploads what was missed")
        return failed

    def _push_missed_checkpoint(self) -> None:
        """After training: if the latest checkpoint's push failed or was skipped, push it once more (blocking).

        A failure of this retry is logged, not raised (the trained model is saved locally); `push_to_hub()`
        uploads it later.
        """
        if not self.args.push_to_hub or not self.is_world_process_zero() or self.args.hub_strategy == HubStrategy.END:
            return
        latest = self._latest_saved_checkpoint
        if latest is None or not os.path.isdir(latest):
            return
        self._finish_current_push()
        if not self._report_failed_pushes() and self._checkpoint_being_pushed == latest:
            return
        logger.warning(f"{latest} is not on the Hub yet; pushing it again")
        self._push_from_checkpoint(latest)
        self._finish_current_push()
        if self._report_failed_pushes():
            logger.warning(f"Pushing {latest} failed again; call `trainer.push_to_hub()` to upload the final model")


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


def unimse_parameter_groups(
    model: nn.Module,
    t5_learning_rate: float,
    fusion_learning_rate: float,
    weight_decay: float,
    no_decay_names: Optional[set[str]] = None,
) -> list[dict[str, Any]]:
    """Optimiser parameter groups of a frozen UniMSE model: its trainable T5 blocks and its fusion modules.

    Only parameters with `requires_grad` are included; `no_decay_names` get weight decay 0 (in groups of their
    own). Each group carries a `name` (`"t5"`, `"fusion"`, with a `"_no_decay"` suffix for those).
    """
    no_decay_names = no_decay_names or set()
    t5_names = set(model.trainable_t5_parameter_names())
    fusion_names = set(model.fusion_parameter_names())
    buckets: dict[tuple[str, bool], list[nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        if name in t5_names:
            kind = "t5"
        elif name in fusion_names:
            kind = "fusion"
        else:
            raise ValueError(f"parameter {name!r} is trainable but neither a fusion module nor a trainable T5 block; "
                             "call `model.freeze_for_fine_tuning()`")
        buckets.setdefault((kind, name in no_decay_names), []).append(parameter)
    learning_rates = {"t5": t5_learning_rate, "fusion": fusion_learning_rate}
    return [
        {"params": params, "lr": learning_rates[kind], "weight_decay": 0.0 if no_decay else weight_decay,
         "name": kind + ("_no_decay" if no_decay else "")}
        for (kind, no_decay), params in sorted(buckets.items())
    ]


def supervised_contrastive_loss(embeddings: torch.Tensor, label_ids: torch.Tensor, temperature: float) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al., 2020) over L2-normalised `embeddings` (batch, dim).

    For each anchor with at least one other sample of the same label id, the mean over its positives of
    -log softmax of the similarity among all other samples, divided by `temperature`; the mean over those
    anchors. Zero (still connected to the graph) when no sample shares a label with another.
    """
    embeddings = F.normalize(embeddings.float(), dim=-1)
    logits = embeddings @ embeddings.transpose(0, 1) / temperature
    self_mask = torch.eye(logits.shape[0], dtype=torch.bool, device=logits.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positives = (label_ids.unsqueeze(0) == label_ids.unsqueeze(1)) & ~self_mask
    positive_counts = positives.sum(dim=1)
    anchors = positive_counts > 0
    if not bool(anchors.any()):
        return embeddings.sum() * 0.0
    positive_log_prob = log_prob.masked_fill(~positives, 0.0).sum(dim=1)
    return -(positive_log_prob[anchors] / positive_counts[anchors]).mean()


def _column(rows: Any, name: str) -> Optional[list[Any]]:
    """A column of a `datasets.Dataset` or a list of dicts; None when it is missing."""
    if hasattr(rows, "column_names"):
        return list(rows[name]) if name in rows.column_names else None
    values = [row.get(name) if isinstance(row, dict) else None for row in rows]
    return None if any(value is None for value in values) else values


__all__ = ["UniMSETrainer", "UniMSETrainingArguments", "unimse_parameter_groups", "supervised_contrastive_loss",
           "last_complete_checkpoint", "checkpoint_problems", "OPTIMIZER_RECIPES", "LOSS_COMPONENTS"]

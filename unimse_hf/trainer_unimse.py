# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""`UniMSETrainer`: `Seq2SeqTrainer` with UniMSE's loss logging, optimiser recipes and generation metrics.

* Loss: the model's own (`model(**batch, labels=..., num_items_in_batch=...).loss` is the full UniMSE
  objective, scaled by the model for gradient accumulation and data parallelism); the trainer only logs its
  parts (`lm_loss`, `cl_ta`, `cl_tv`, `cl_label`), averaged over the logging interval and over processes,
  so that the logged `loss` is `lm_loss + Σ weight · part`.
* Optimiser: parameter groups for the trainable T5 blocks and the fusion modules of a model frozen with
  `model.freeze_for_fine_tuning()` (call it yourself); `optimizer_recipe="official"` (Adam with coupled L2
  decay, constant LR, no clipping, no warmup: reference B9) or `"hf"` (AdamW with the scheduler, warmup and
  clipping of the arguments).
* Evaluation decodes as every other caller does (`processor.generation_kwargs()`: grammar-constrained) and
  scores the parsed labels per dataset (`unimse_hf.metrics`; unreadable output counts as wrong). A dict
  `eval_dataset` (`{"mosi": ..., "meld": ...}`) gives `eval_mosi_*`, `eval_meld_*` and `eval_mean_primary`.
* Every folder it saves (checkpoints and the final model) is complete (`checkpoint.complete_checkpoint_folder`)
  and never holds non-finite weights; `NonFiniteTrainingGuard` stops a diverging run (non-zero exit).
  Checkpoint pushes are made by `HubPushCallback` (see `hub_push_callback.py`).
* `train(resume_from_checkpoint=True | "latest")` resumes from the newest *complete* checkpoint and refuses
  one whose config differs from the model's, naming the fields.

This module is not uploaded with checkpoints.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import numpy as np
import torch
from torch import nn

from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments
from transformers.trainer_utils import EvalLoopOutput, PredictionOutput, TrainOutput

from .checkpoint import complete_checkpoint_folder, declare_custom_pipeline, last_complete_checkpoint, \
    resume_config_differences
from .metrics import AGGREGATE_METRIC, compute_unimse_metrics
from .model_card import build_model_card
from .training_guards import NonFiniteTrainingError, NonFiniteTrainingGuard, check_learning_rate, \
    non_finite_tensor_names

logger = logging.getLogger(__name__)

OPTIMIZER_RECIPES = ("official", "hf")
LOSS_PARTS = {"lm_loss": "lm_loss", "cl_ta": "contrastive_loss_ta", "cl_tv": "contrastive_loss_tv",
              "cl_label": "contrastive_loss_label"}
"""Logged name -> field of the model output."""

MetricsFunction = Callable[[Sequence[str], Sequence[str], Sequence[str]], dict[str, float]]
"""(generated texts, gold universal labels, dataset names) -> flat metrics dict."""


@dataclass
class UniMSETrainingArguments(Seq2SeqTrainingArguments):
    r"""
    [`Seq2SeqTrainingArguments`] with UniMSE's optimiser recipes and decoding options.

    The two parameter groups use `t5_learning_rate` and `fusion_learning_rate` (each a finite number > 0);
    `learning_rate` and `optim` are not used (a warning says so when `learning_rate` is set).
    `optimizer_recipe="official"` reproduces the official optimisation (B9 in docs/official-differences.md) and therefore sets
    `lr_scheduler_type="constant"`, `warmup_steps=0` and `max_grad_norm=0` (no clipping), with a warning when
    another value was asked for; these three are the only arguments it changes. `"hf"` uses AdamW (no decay on
    biases and norms) with the scheduler, warmup and clipping given here. Defaults differing from
    transformers': `weight_decay=1e-4`, `predict_with_generate=True`, `remove_unused_columns=False` (the data
    collator reads raw rows) and `hub_strategy="end"`, the only value accepted: pass a `HubPushCallback` to push
    checkpoints (transformers' own checkpoint pushes leave the remote code out of the repo root).
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
    generation_max_new_tokens: Optional[int] = field(
        default=None,
        metadata={"help": "Tokens generated per sample at evaluation; default: what the longest label of the "
                          "processor's grammar needs (`processor.generation_kwargs()`)."},
    )
    generation_structured: bool = field(
        default=True,
        metadata={"help": "Constrain evaluation decoding to the label grammar, as the pipeline does; False "
                          "decodes freely (as the official code does)."},
    )
    hub_strategy: str = field(
        default="end",
        metadata={"help": "With `push_to_hub`, the Trainer pushes the final model only ('end'); checkpoint pushes "
                          "are made by `HubPushCallback` (complete, one commit each, resilient to Hub errors).",
                  "choices": ["end"]},
    )
    predict_with_generate: bool = field(default=True, metadata={"help": "Evaluate by generating labels."})
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Keep the raw row columns; `UniMSEDataCollator` builds the model inputs."}
    )

    def __post_init__(self) -> None:
        if self.optimizer_recipe not in OPTIMIZER_RECIPES:
            raise ValueError(f"`optimizer_recipe` must be one of {OPTIMIZER_RECIPES}, got {self.optimizer_recipe!r}")
        check_learning_rate("t5_learning_rate", self.t5_learning_rate)
        check_learning_rate("fusion_learning_rate", self.fusion_learning_rate)
        if isinstance(self.weight_decay, bool) or not isinstance(self.weight_decay, (int, float)) \
                or not math.isfinite(self.weight_decay) or self.weight_decay < 0:
            raise ValueError(f"`weight_decay` must be a finite number >= 0, got {self.weight_decay!r}")
        if self.generation_max_new_tokens is not None and (
                isinstance(self.generation_max_new_tokens, bool) or not isinstance(self.generation_max_new_tokens, int)
                or self.generation_max_new_tokens < 1):
            raise ValueError(f"`generation_max_new_tokens` must be None or an int >= 1, "
                             f"got {self.generation_max_new_tokens!r}")
        if getattr(self.hub_strategy, "value", self.hub_strategy) != "end":
            raise ValueError(f"`hub_strategy` must be 'end' (the final model only), got {self.hub_strategy!r}; push "
                             "checkpoints with `callbacks=[HubPushCallback(strategy=...)]`")
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

    Freeze the model first (`model.freeze_for_fine_tuning()`): the optimiser takes the trainable T5 blocks and
    the fusion modules and refuses any other trainable parameter. Pass the [`UniMSEProcessor`] as
    `processing_class` (it is saved with every checkpoint, decodes and parses the generated labels) and a
    [`UniMSEDataCollator`] as `data_collator`. A [`NonFiniteTrainingGuard`] is always installed.

    Args:
        metrics_function (`Callable`, *optional*):
            `(generated_texts, references, dataset_names) -> dict` used by the built-in scoring; defaults to
            `unimse_hf.metrics.compute_unimse_metrics` (per-dataset prefixed metrics, the overall
            `parse_failure_rate` and the aggregate `mean_primary` for `metric_for_best_model`). References are
            the evaluated rows' `target` column (universal label strings), dataset names their `dataset`
            column. The metrics of a set whose rows all belong to the dataset its `eval_dataset` key ends with
            (`{"mosi": rows}`) are named without the dataset again (`eval_mosi_mae`). Passing
            `compute_metrics` replaces the built-in scoring; with `predict_with_generate=False` evaluation
            reports the loss only.
        Other arguments are those of [`Seq2SeqTrainer`].
    """

    def __init__(self, *args: Any, metrics_function: Optional[MetricsFunction] = None, **kwargs: Any) -> None:
        kwargs["callbacks"] = [NonFiniteTrainingGuard(), *(kwargs.get("callbacks") or [])]
        super().__init__(*args, **kwargs)
        # Duck-typed: a processor loaded with trust_remote_code is another class object than UniMSEProcessor.
        if not all(hasattr(self.processing_class, name) for name in ("generation_kwargs", "batch_decode",
                                                                     "feature_extractor", "task_prefix")):
            raise TypeError(f"UniMSETrainer needs a UniMSEProcessor as `processing_class`, got "
                            f"{type(self.processing_class).__name__}")
        self.metrics_function = metrics_function
        declare_custom_pipeline(self.accelerator.unwrap_model(self.model).config)
        self._loss_part_sums: Optional[torch.Tensor] = None  # per LOSS_PARTS: summed contribution, times present
        self._loss_parts_logged_at_step = 0

    # ------------------------------------------------------------------ training and resuming

    def train(self, resume_from_checkpoint: Optional[Union[str, bool]] = None, trial: Any = None,
              ignore_keys_for_eval: Optional[list[str]] = None, **kwargs: Any) -> TrainOutput:
        """`Trainer.train`, resuming from the newest *complete* checkpoint for `resume_from_checkpoint=True` or
        `"latest"` (transformers takes the newest folder, even one a killed save left incomplete), and refusing,
        before any work, a checkpoint whose config differs from the model's (naming the fields)."""
        if resume_from_checkpoint is True or resume_from_checkpoint == "latest":
            found = last_complete_checkpoint(self.args.output_dir, world_size=self.args.world_size,
                                             save_only_model=self.args.save_only_model)
            if found is None:
                raise ValueError(f"No complete checkpoint found in output directory ({self.args.output_dir})")
            resume_from_checkpoint = found
        if isinstance(resume_from_checkpoint, (str, os.PathLike)):
            differences = resume_config_differences(resume_from_checkpoint,
                                                    self.accelerator.unwrap_model(self.model).config)
            if differences:
                raise ValueError(f"cannot resume from {resume_from_checkpoint}: its config.json differs from the "
                                 f"model's config in {'; '.join(differences)}. Build the model with the "
                                 "checkpoint's config, or train into a new output_dir")
        return super().train(resume_from_checkpoint=resume_from_checkpoint, trial=trial,
                             ignore_keys_for_eval=ignore_keys_for_eval, **kwargs)

    # ------------------------------------------------------------------ loss

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Optional[Union[torch.Tensor, int]] = None,
    ) -> Union[torch.Tensor, tuple[torch.Tensor, Any]]:
        """The model's loss (the full UniMSE objective, see `UniMSESeq2SeqLMOutput.loss`); in training, its
        parts are recorded for the next training log."""
        if "labels" not in inputs:
            raise ValueError("UniMSETrainer.compute_loss needs `labels` (the rows' universal label `target`)")
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        if model.training:
            self._record_loss_parts(outputs, inputs["labels"], num_items_in_batch)
        return (loss, outputs) if return_outputs else loss

    def _record_loss_parts(self, outputs: Any, labels: torch.Tensor,
                           num_items_in_batch: Optional[Union[torch.Tensor, int]]) -> None:
        """Add this micro-batch's share of each loss part, scaled as the Trainer scales the loss it logs."""
        if num_items_in_batch is None:  # the Trainer divides the loss by the accumulation steps
            lm_scale = contrastive_scale = 1.0 / getattr(self, "current_gradient_accumulation_steps", 1)
        else:  # the model scaled its loss; the Trainer multiplies it by the processes averaging tokens
            processes = self.accelerator.num_processes if self.args.average_tokens_across_devices else 1
            lm_scale = processes
            contrastive_scale = processes * labels.ne(-100).sum().to(self.args.device) / num_items_in_batch
        if self._loss_part_sums is None:
            self._loss_part_sums = torch.zeros(len(LOSS_PARTS), 2, device=self.args.device)
        for index, (name, output_field) in enumerate(LOSS_PARTS.items()):
            value = getattr(outputs, output_field, None)
            if value is not None:
                scale = lm_scale if name == "lm_loss" else contrastive_scale
                self._loss_part_sums[index, 0] += value.detach().float().to(self.args.device) * scale
                self._loss_part_sums[index, 1] += 1

    def log(self, logs: dict[str, float], start_time: Optional[float] = None) -> None:
        """Add each loss part's mean per optimizer step since the last training log to a training log."""
        if "loss" in logs and self._loss_part_sums is not None:
            sums = self._loss_part_sums
            if self.accelerator.num_processes > 1:
                sums = torch.stack([self.accelerator.reduce(sums[:, 0].clone(), reduction="mean"),
                                    self.accelerator.reduce(sums[:, 1].clone(), reduction="sum")], dim=1)
            steps = max(self.state.global_step - self._loss_parts_logged_at_step, 1)
            for index, name in enumerate(LOSS_PARTS):
                if sums[index, 1] > 0:
                    logs[name] = (sums[index, 0] / steps).item()
            self._loss_part_sums.zero_()
            self._loss_parts_logged_at_step = self.state.global_step
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
        """Generate labels for the eval set(s) with the processor's decoding and score them.

        With a dict of sets (given here or as the trainer's `eval_dataset`), each is evaluated under
        `{metric_key_prefix}_{name}` and `{metric_key_prefix}_mean_primary` is the mean of their
        `mean_primary` values (logged too, so `metric_for_best_model="mean_primary"` works).
        """
        datasets = self.eval_dataset if eval_dataset is None else eval_dataset
        if isinstance(datasets, dict):
            metrics: dict[str, float] = {}
            for name, dataset in datasets.items():
                metrics.update(self.evaluate(dataset if eval_dataset is not None else name, ignore_keys=ignore_keys,
                                             metric_key_prefix=f"{metric_key_prefix}_{name}", **gen_kwargs))
            primaries = [metrics.get(f"{metric_key_prefix}_{name}_{AGGREGATE_METRIC}") for name in datasets]
            primaries = [value for value in primaries if value is not None and not math.isnan(value)]
            if primaries:
                aggregate = {f"{metric_key_prefix}_{AGGREGATE_METRIC}": float(np.mean(primaries))}
                metrics.update(aggregate)
                self.log(aggregate)
            return metrics
        return super().evaluate(eval_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix,
                                **self._generation_kwargs(gen_kwargs))

    def predict(self, test_dataset: Any, ignore_keys: Optional[list[str]] = None,
                metric_key_prefix: str = "test", **gen_kwargs: Any) -> PredictionOutput:
        """Like `evaluate` on `test_dataset`, returning the generated ids too."""
        return super().predict(test_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix,
                               **self._generation_kwargs(gen_kwargs))

    def _generation_kwargs(self, gen_kwargs: dict[str, Any]) -> dict[str, Any]:
        """The processor's decoding (`generation_kwargs`) under the caller's explicit `gen_kwargs`."""
        defaults = self.processing_class.generation_kwargs(structured=self.args.generation_structured,
                                                           max_new_tokens=self.args.generation_max_new_tokens)
        if gen_kwargs.get("max_length") is not None:
            defaults.pop("max_new_tokens")
        return {**defaults, **gen_kwargs}

    def prediction_step(self, model: nn.Module, inputs: dict[str, Any], prediction_loss_only: bool,
                        ignore_keys: Optional[list[str]] = None, **gen_kwargs: Any):
        """`Seq2SeqTrainer.prediction_step`, leaving the model's generation config as it found it.

        Seq2SeqTrainer writes the default `max_length` (20) into the model's generation config at each step;
        it is restored so that saved checkpoints and later `generate` calls are not capped at 20 tokens (B13).
        """
        generation_config = self.accelerator.unwrap_model(model).generation_config
        had_max_length = generation_config.max_length
        try:
            return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys=ignore_keys, **gen_kwargs)
        finally:
            generation_config.max_length = had_max_length

    def evaluation_loop(self, dataloader: Any, description: str, prediction_loss_only: Optional[bool] = None,
                        ignore_keys: Optional[list[str]] = None, metric_key_prefix: str = "eval") -> EvalLoopOutput:
        """`Trainer.evaluation_loop`, then the built-in scoring of the generated labels against the rows the loop
        read (`dataloader.dataset`) unless `compute_metrics` was given."""
        scores = (self.compute_metrics is None and self.args.predict_with_generate
                  and not self.args.prediction_loss_only)
        output = super().evaluation_loop(dataloader, description, prediction_loss_only=False if scores else
                                         prediction_loss_only, ignore_keys=ignore_keys,
                                         metric_key_prefix=metric_key_prefix)
        if scores and output.predictions is not None:
            metrics = self.score_generations(output.predictions, dataloader.dataset, metric_key_prefix)
            output.metrics.update({f"{metric_key_prefix}_{name}": value for name, value in metrics.items()})
        return output

    def score_generations(self, predictions: Any, rows: Any, metric_key_prefix: str = "eval") -> dict[str, float]:
        """Decode generated ids (DDP padding duplicates beyond `len(rows)` dropped) and score them against the rows'
        `target` and `dataset` columns with `metrics_function` (unprefixed keys)."""
        predictions = predictions[0] if isinstance(predictions, tuple) else predictions
        predictions = np.asarray(predictions)[: len(rows)]
        predictions = np.where(predictions < 0, self.processing_class.tokenizer.pad_token_id, predictions)
        generated = self.processing_class.batch_decode(predictions)
        references, dataset_names = _column(rows, "target"), _column(rows, "dataset")
        if references is None or dataset_names is None:
            raise ValueError("UniMSETrainer's built-in metrics need `target` and `dataset` columns in the evaluated "
                             "rows; add them or pass `compute_metrics`")
        metrics_function = self.metrics_function or compute_unimse_metrics
        metrics = metrics_function(generated, references, dataset_names)
        corpora = {str(name).lower() for name in dataset_names}
        if len(corpora) == 1:
            corpus = corpora.pop()
            if metric_key_prefix.endswith(f"_{corpus}"):
                metrics = {(name[len(corpus) + 1:] if name.startswith(f"{corpus}_") else name): value
                           for name, value in metrics.items()}
        return metrics

    # ------------------------------------------------------------------ saving

    def save_model(self, output_dir: Optional[str] = None, _internal_call: bool = False) -> None:
        """Save as transformers does, completed by `complete_checkpoint_folder` (pipeline module, `handler.py`,
        model card), so every checkpoint folder and the final model load with `pipeline(...,
        trust_remote_code=True)`. Refuses (`NonFiniteTrainingError`, nothing written) non-finite weights."""
        model = self.accelerator.unwrap_model(self.model)
        broken = non_finite_tensor_names(model.state_dict().items())
        if broken:
            raise NonFiniteTrainingError(f"not saving to {output_dir or self.args.output_dir}: {len(broken)} weight "
                                         f"tensors are NaN or infinite ({', '.join(broken[:5])})")
        super().save_model(output_dir, _internal_call=True)
        if self.args.should_save:
            complete_checkpoint_folder(output_dir or self.args.output_dir, model_card=str(self._model_card()))
        if self.args.push_to_hub and not _internal_call:
            self.push_to_hub(commit_message="Model save", revision=self.args.hub_revision)

    def create_model_card(self, model_name: Optional[str] = None, finetuned_from: Optional[str] = None,
                          metrics: Optional[dict[str, float]] = None, **kwargs: Any) -> None:
        """Write `output_dir/README.md` from the project's template, with measured metrics only: `metrics` (e.g.
        the `test_*` results of `predict`) or else the latest evaluation logged during training."""
        if not self.is_world_process_zero():
            return
        card = self._model_card(model_name=model_name, finetuned_from=finetuned_from, metrics=metrics)
        os.makedirs(self.args.output_dir, exist_ok=True)
        with open(os.path.join(self.args.output_dir, "README.md"), "w", encoding="utf-8") as handle:
            handle.write(str(card))

    def _model_card(self, model_name: Optional[str] = None, finetuned_from: Optional[str] = None,
                    metrics: Optional[dict[str, float]] = None):
        model = self.accelerator.unwrap_model(self.model)
        if metrics is None:  # the latest evaluation: every eval_* entry logged at the newest evaluated step
            evaluations = [entry for entry in self.state.log_history if any(k.startswith("eval_") for k in entry)]
            latest_step = evaluations[-1].get("step") if evaluations else None
            metrics = {k: v for entry in evaluations if entry.get("step") == latest_step for k, v in entry.items()}
        repo_id = self.args.hub_model_id or model_name or os.path.basename(os.path.abspath(self.args.output_dir))
        extractor = self.processing_class.feature_extractor
        datasets = _eval_dataset_names(self.eval_dataset)
        return build_model_card(
            model.config, model_name=model_name or os.path.basename(repo_id), repo_id=repo_id,
            eval_metrics={k: v for k, v in metrics.items() if isinstance(v, (int, float))},
            split="test" if any(key.startswith("test_") for key in metrics) else "validation",
            datasets=datasets, base_model=finetuned_from, task_prefix=self.processing_class.task_prefix,
            decoding=("constrained to the label grammar, as the pipeline decodes" if self.args.generation_structured
                      else "unconstrained (`generation_structured=False`), unlike the pipeline"),
            training=(f"Fine-tuned with `UniMSETrainer` ({self.args.optimizer_recipe} recipe, T5 blocks "
                      f"{model.config.trainable_t5_blocks} at lr {self.args.t5_learning_rate}, fusion modules at lr "
                      f"{self.args.fusion_learning_rate}, weight decay {self.args.weight_decay}) for "
                      f"{self.state.global_step} steps of batch {self.args.per_device_train_batch_size} "
                      f"× {self.args.gradient_accumulation_steps} accumulation × {self.args.world_size} processes."),
            acoustic_kind=getattr(extractor, "acoustic_feature_kind", None) or "unspecified",
            visual_kind=getattr(extractor, "visual_feature_kind", None) or "unspecified",
        )


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
                             "call `model.freeze_for_fine_tuning()` before training")
        buckets.setdefault((kind, name in no_decay_names), []).append(parameter)
    learning_rates = {"t5": t5_learning_rate, "fusion": fusion_learning_rate}
    return [
        {"params": params, "lr": learning_rates[kind], "weight_decay": 0.0 if no_decay else weight_decay,
         "name": kind + ("_no_decay" if no_decay else "")}
        for (kind, no_decay), params in sorted(buckets.items())
    ]


def _column(rows: Any, name: str) -> Optional[list[Any]]:
    """A column of a `datasets.Dataset` or a list of dicts; None when it is missing."""
    if hasattr(rows, "column_names"):
        return list(rows[name]) if name in rows.column_names else None
    values = [row.get(name) if isinstance(row, dict) else None for row in rows]
    return None if any(value is None for value in values) else values


def _eval_dataset_names(eval_dataset: Any) -> list[str]:
    """The sorted dataset names of a trainer's `eval_dataset` (one set, a dict of sets, or None)."""
    sets = [] if eval_dataset is None else list(eval_dataset.values()) if isinstance(eval_dataset, dict) \
        else [eval_dataset]
    return sorted({str(name) for rows in sets for name in (_column(rows, "dataset") or [])})


__all__ = ["UniMSETrainer", "UniMSETrainingArguments", "unimse_parameter_groups", "OPTIMIZER_RECIPES", "LOSS_PARTS"]

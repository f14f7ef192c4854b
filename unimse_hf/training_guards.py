# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Guards that stop a training run which cannot produce a usable model, before it writes one.

* `check_learning_rate`: a learning rate must be a finite number > 0 (used by `UniMSETrainingArguments`).
* `NonFiniteTrainingGuard`: a `TrainerCallback` that raises `NonFiniteTrainingError` (so the run exits
  non-zero) as soon as the loss, its logged parts, the gradients or the weights stop being finite, and
  before a checkpoint is written from such weights.

This module is not uploaded with checkpoints.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

LOGGED_LOSS_KEYS = ("loss", "lm_loss", "cl_ta", "cl_tv", "cl_label", "grad_norm")
"""Training-log entries that `NonFiniteTrainingGuard` requires to be finite."""

SHOWN_TENSOR_NAMES = 5
"""How many offending tensor names an error message lists."""


class NonFiniteTrainingError(FloatingPointError):
    """Training produced a NaN or infinite loss, gradient or weight; the run cannot give a usable model."""


def check_learning_rate(name: str, value: Any) -> float:
    """Return `value` if it is a finite number > 0; raise `ValueError` naming the argument `name` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"`{name}` must be a finite number > 0, got {value!r} ({type(value).__name__})")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"`{name}` must be a finite number > 0, got {value!r}")
    return float(value)


def non_finite_tensor_names(named_tensors: Iterable[tuple[str, torch.Tensor]]) -> list[str]:
    """Names of the floating-point tensors that hold a NaN or an infinity (one device sync per device)."""
    by_device: dict[torch.device, list[tuple[str, torch.Tensor]]] = {}
    for name, tensor in named_tensors:
        if tensor is not None and torch.is_floating_point(tensor):
            by_device.setdefault(tensor.device, []).append((name, tensor))
    broken = []
    for named in by_device.values():
        finite = torch.stack([torch.isfinite(tensor).all() for _, tensor in named]).tolist()
        broken += [name for (name, _), ok in zip(named, finite) if not ok]
    return broken


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN_TENSOR_NAMES])
    return shown + (f" and {len(names) - SHOWN_TENSOR_NAMES} more" if len(names) > SHOWN_TENSOR_NAMES else "")


class NonFiniteTrainingGuard(TrainerCallback):
    r"""
    Stops training with [`NonFiniteTrainingError`] when it diverges, so that the script exits non-zero and no
    checkpoint holds NaN or infinite weights.

    * Before each optimizer step: every gradient must be finite (a NaN/inf loss gives NaN/inf gradients); the
      error is raised before the step, so the weights stay as they were. Under DDP the gradients are already
      averaged, so every rank stops at the same step. Skipped with `fp16` (its gradient scaler skips
      overflowing steps itself).
    * At each training log: `loss`, `grad_norm` and the loss parts (`lm_loss`, `cl_ta`, `cl_tv`, `cl_label`)
      must be finite. (With `logging_nan_inf_filter`, transformers leaves NaN/inf steps out of `loss`; the parts
      are not filtered.)
    * Before a save and at the last step: every trainable weight must be finite.
    """

    def on_pre_optimizer_step(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                              model: torch.nn.Module = None, **kwargs: Any) -> None:
        if args.fp16 or model is None:
            return
        gradients = [(name, p.grad) for name, p in model.named_parameters() if p.requires_grad and p.grad is not None]
        broken = non_finite_tensor_names(gradients)
        if broken:
            raise NonFiniteTrainingError(
                f"non-finite loss at step {state.global_step + 1}: the gradients of {len(broken)} of {len(gradients)} "
                f"trainable tensors are NaN or infinite ({_listed(broken)}). Training stopped before the optimizer "
                "step, so the weights are those of the previous step; lower `t5_learning_rate` / "
                "`fusion_learning_rate` or check the inputs of this step.")

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict[str, float] = None, **kwargs: Any) -> None:
        keys = [key for key in LOGGED_LOSS_KEYS if not (key == "grad_norm" and args.fp16)]
        broken = {key: logs[key] for key in keys
                  if isinstance((logs or {}).get(key), (int, float)) and not math.isfinite(logs[key])}
        if broken:
            parts = ", ".join(f"{key}={value}" for key, value in broken.items())
            raise NonFiniteTrainingError(f"non-finite loss logged at step {state.global_step}: {parts}; training "
                                         "stopped. Lower the learning rates or check the training rows.")

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    model: torch.nn.Module = None, **kwargs: Any) -> None:
        if model is None or not (control.should_save or control.should_training_stop):
            return
        weights = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
        broken = non_finite_tensor_names((name, p.detach()) for name, p in weights)
        if broken:
            raise NonFiniteTrainingError(
                f"non-finite weights after step {state.global_step}: {len(broken)} of {len(weights)} trainable "
                f"tensors hold NaN or infinite values ({_listed(broken)}); training stopped without saving them.")


__all__ = ["NonFiniteTrainingGuard", "NonFiniteTrainingError", "check_learning_rate", "non_finite_tensor_names",
           "LOGGED_LOSS_KEYS"]

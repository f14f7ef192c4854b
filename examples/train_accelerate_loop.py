#!/usr/bin/env python
# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Train UniMSE with a plain Accelerate loop (no Trainer): the model's own loss is the whole objective.

`model(**batch).loss` is LM + cl_weight_ta·InfoNCE(t, a) + cl_weight_tv·InfoNCE(t, v) + cl_label_weight·label
term, so any loop (this one, PEFT, your own) trains the full UniMSE recipe; passing `num_items_in_batch` (the
target tokens of all micro-batches of one optimizer step, on all processes) makes gradient accumulation and
data parallelism give the gradients of one large batch, as `UniMSETrainer` does.

    python examples/train_accelerate_loop.py --tiny --dataset_dir prepared/mosi --output_dir runs/loop \
        --max_steps 100 --batch_size 16 --gradient_accumulation_steps 2
    accelerate launch --config_file examples/accelerate/ddp_cpu_2proc.yaml examples/train_accelerate_loop.py ...

It loads data and builds the model as `train_unimse.py` does, optimises the same parameter groups with Adam
(the official recipe: coupled L2 decay, constant learning rates, no clipping), prints the loss parts of each
step and saves a complete checkpoint (`save_checkpoint`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
from typing import Any, Optional

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_unimse  # noqa: E402

from unimse_hf.checkpoint import save_checkpoint  # noqa: E402
from unimse_hf.data_collator import UniMSEDataCollator  # noqa: E402
from unimse_hf.trainer_unimse import LOSS_PARTS, unimse_parameter_groups  # noqa: E402
from unimse_hf.training_guards import NonFiniteTrainingError, check_learning_rate  # noqa: E402


def parse_arguments(argv: Optional[list[str]]) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset_dir", nargs="+", required=True, help="Folders with train.parquet (UniMSE rows).")
    parser.add_argument("--output_dir", required=True, help="Where the checkpoint and loss_parts.jsonl go.")
    parser.add_argument("--tiny", action="store_true", help="A small random model (smoke tests, CPU).")
    parser.add_argument("--model_name_or_path", default=None, help="A T5 or UniMSE checkpoint.")
    parser.add_argument("--config_overrides", default=None, help="As in train_unimse.py.")
    parser.add_argument("--tokenizer_dir", default="data/t5", help="spiece.model folder (no saved processor).")
    parser.add_argument("--contrastive_label_column", default="polarity")
    parser.add_argument("--batch_size", type=int, default=16, help="Rows per micro-batch and process.")
    parser.add_argument("--gradient_accumulation_steps", type=int, default=1)
    parser.add_argument("--max_steps", type=int, default=100, help="Optimizer steps.")
    parser.add_argument("--t5_learning_rate", type=float, default=3e-4)
    parser.add_argument("--fusion_learning_rate", type=float, default=1e-4)
    parser.add_argument("--weight_decay", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cpu", action="store_true", help="Run on CPU even if an accelerator is present.")
    args = parser.parse_args(argv)
    check_learning_rate("t5_learning_rate", args.t5_learning_rate)
    check_learning_rate("fusion_learning_rate", args.fusion_learning_rate)
    for name in ("batch_size", "gradient_accumulation_steps", "max_steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if not math.isfinite(args.weight_decay) or args.weight_decay < 0:
        parser.error(f"--weight_decay must be a finite number >= 0, got {args.weight_decay}")
    return args


def loss_parts(outputs: Any, share: float = 1.0) -> dict[str, torch.Tensor]:
    """The loss parts of one micro-batch's model output under the names `UniMSETrainer` logs, each contrastive
    part scaled by `share` (`lm_loss` as given: the model already divided it by `num_items_in_batch`)."""
    parts = {}
    for name, output_field in LOSS_PARTS.items():
        value = getattr(outputs, output_field, None)
        if value is not None:
            parts[name] = value.detach() * (1.0 if name == "lm_loss" else share)
    return parts


def main(argv: Optional[list[str]] = None) -> list[dict[str, float]]:
    """Train, print and write each step's loss parts (`loss_parts.jsonl`), save the checkpoint; return the parts."""
    args = parse_arguments(argv)
    accelerator = Accelerator(cpu=args.cpu)
    torch.manual_seed(args.seed)
    raw = train_unimse.load_splits(train_unimse.DataArguments(dataset_dir=args.dataset_dir))
    if "train" not in raw:
        raise ValueError(f"--dataset_dir {args.dataset_dir}: no train split")
    model_args = train_unimse.ModelArguments(model_name_or_path=args.model_name_or_path, tiny=args.tiny,
                                             config_overrides=args.config_overrides, tokenizer_dir=args.tokenizer_dir)
    model, processor = train_unimse.build_model_and_processor(model_args, train_unimse.feature_dims(raw["train"]))
    model.freeze_for_fine_tuning()
    collator = UniMSEDataCollator(
        processor, contrastive_label_column=args.contrastive_label_column if model.config.cl_label_weight > 0 else None)
    groups = unimse_parameter_groups(model, args.t5_learning_rate, args.fusion_learning_rate, args.weight_decay)
    optimizer = torch.optim.Adam(groups)
    loader = DataLoader(raw["train"], batch_size=args.batch_size, shuffle=True, collate_fn=collator,
                        generator=torch.Generator().manual_seed(args.seed))
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    model.train()

    history: list[dict[str, float]] = []
    batches = iter(loader)
    for step in range(1, args.max_steps + 1):
        micro_batches = []
        for _ in range(args.gradient_accumulation_steps):
            try:
                micro_batches.append(next(batches))
            except StopIteration:
                batches = iter(loader)
                micro_batches.append(next(batches))
        # Target tokens of the whole step on all processes: the model sums token losses over this count.
        local_tokens = [batch["labels"].ne(-100).sum() for batch in micro_batches]
        num_items = accelerator.gather(torch.stack(local_tokens).sum()).sum()
        sums: dict[str, torch.Tensor] = {}
        for index, (batch, tokens) in enumerate(zip(micro_batches, local_tokens)):
            # DDP averages gradients over processes; scaling by their number keeps the sum over the global batch.
            last = index == len(micro_batches) - 1
            context = accelerator.no_sync(model) if not last else contextlib.nullcontext()
            with context:
                outputs = model(**batch, num_items_in_batch=num_items)
                accelerator.backward(outputs.loss * accelerator.num_processes)
            for name, value in loss_parts(outputs, share=float(tokens) / float(num_items)).items():
                sums[name] = sums.get(name, 0.0) + value * accelerator.num_processes
        optimizer.step()
        optimizer.zero_grad()
        logged = {name: accelerator.reduce(value.float(), reduction="mean").item() for name, value in sums.items()}
        if not all(math.isfinite(value) for value in logged.values()):
            raise NonFiniteTrainingError(f"non-finite loss at step {step}: {logged}")
        history.append({"step": step, **logged})
        accelerator.print(json.dumps(history[-1]))

    if accelerator.is_main_process:
        os.makedirs(args.output_dir, exist_ok=True)
        with open(os.path.join(args.output_dir, "loss_parts.jsonl"), "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(entry) + "\n" for entry in history)
        save_checkpoint(accelerator.unwrap_model(model), processor, args.output_dir)
    accelerator.wait_for_everyone()
    return history


if __name__ == "__main__":
    main()

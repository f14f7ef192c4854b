# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Fusion overhead, hardware efficiency and peak memory of the UniMSE training step.

UniMSE (PMF adapters + LSTMs + InfoNCE, the config defaults) is timed against a plain
`T5ForConditionalGeneration` with the same dimensions, the same backbone weights and the same trainable
set (the paper's: `trainable_t5_blocks` of encoder and decoder; UniMSE also trains its fusion modules),
at t5-small and t5-base dimensions with random weights: batch 8, 32 source and 12 target tokens, 50x64
acoustic and 30x64 visual frames. A training step is forward + backward + `torch.optim.Adam` step;
the eval forward is a teacher-forced forward under `torch.no_grad()` in eval mode. All four
candidates of a size run once per round, in a rotated order, and the ratios are per-round ratios.

FLOPs of one training step come from `torch.utils.flop_counter.FlopCounterMode` (matmuls, convolutions
and attention; element-wise work and the optimizer are not counted) and are divided by the median step
time, against the best median of float32 `torch.mm` at a few sizes on this machine. Peak memory is
the kernel's resident-set high-water mark (`VmHWM`) of a fresh subprocess, reset after the model and
optimizer are built (`/proc/self/clear_refs`), over two training steps at t5-base dimensions. A
prototype adapter that never materialises the [h; v; a] concat (monkeypatched for the run only) is
timed against today's adapter.

Usage::

    python benchmarks/bench_fusion_overhead.py                        # CPU, float32, writes the results
    python benchmarks/bench_fusion_overhead.py --device cuda --dtype bfloat16   # GPU section only, if any
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402
from transformers import T5Config, T5ForConditionalGeneration  # noqa: E402

from common import (  # noqa: E402
    REPO_ROOT, goal_comment, interleaved_timings, load_average, machine_description, markdown_table, quartiles, ratio_of,
    set_thread_count, write_result,
)
from unimse_hf import UniMSEConfig, UniMSEForConditionalGeneration  # noqa: E402
from unimse_hf.modeling_unimse import UniMSEFusionAdapter, UniMSEModalityEncoder  # noqa: E402

T5_DIMENSIONS: dict[str, dict[str, int]] = {
    "t5-small": dict(d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_heads=8),
    "t5-base": dict(d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_heads=12),
}
RATIO_GOALS = {"t5-small": 1.10, "t5-base": 1.05}
VOCAB_SIZE = 32128
BATCH_SIZE = 8
SOURCE_TOKENS = 32
TARGET_TOKENS = 12
ACOUSTIC_FRAMES, VISUAL_FRAMES, FRAME_DIM = 50, 30, 64


@dataclass
class ModelPair:
    """A UniMSE model and the plain T5 with the same backbone weights and trainable T5 blocks, with optimizers."""

    unimse: UniMSEForConditionalGeneration
    t5: T5ForConditionalGeneration
    unimse_optimizer: torch.optim.Optimizer
    t5_optimizer: torch.optim.Optimizer
    unimse_trainable: int
    t5_trainable: int


def unimse_config(size: str) -> UniMSEConfig:
    """The UniMSE config (all UniMSE defaults, 64-d acoustic and visual frames) at `size` T5 dimensions."""
    return UniMSEConfig(**T5_DIMENSIONS[size], vocab_size=VOCAB_SIZE, acoustic_dim=FRAME_DIM, visual_dim=FRAME_DIM)


def build_unimse(size: str, device: torch.device, dtype: torch.dtype, seed: int = 0) -> UniMSEForConditionalGeneration:
    """A randomly initialised UniMSE at `size` dimensions, frozen to the paper's trainable set, in train mode."""
    torch.manual_seed(seed)
    model = UniMSEForConditionalGeneration(unimse_config(size)).to(device=device, dtype=dtype)
    model.freeze_for_fine_tuning()
    return model.train()


def build_plain_t5(unimse: UniMSEForConditionalGeneration) -> T5ForConditionalGeneration:
    """A plain T5 with UniMSE's dimensions and backbone weights, training only UniMSE's trainable T5 blocks."""
    config = unimse.config
    t5_config = T5Config(**{key: getattr(config, key) for key in T5_DIMENSIONS["t5-base"]},
                         vocab_size=config.vocab_size, decoder_start_token_id=config.decoder_start_token_id,
                         dropout_rate=config.dropout_rate)
    parameter = next(unimse.parameters())
    t5 = T5ForConditionalGeneration(t5_config).to(device=parameter.device, dtype=parameter.dtype)
    missing, _ = t5.load_state_dict(unimse.state_dict(), strict=False)
    if missing:
        raise RuntimeError(f"the plain T5 did not receive UniMSE's backbone weights: {missing[:5]}")
    trainable = tuple(f"{stack}.block.{index}." for stack in ("encoder", "decoder") for index in config.trainable_t5_blocks)
    for name, weight in t5.named_parameters():
        weight.requires_grad_(name.startswith(trainable))
    return t5.train()


def build_pair(size: str, device: torch.device, dtype: torch.dtype) -> ModelPair:
    """Build UniMSE and its plain-T5 twin with Adam optimizers over their trainable parameters."""
    unimse = build_unimse(size, device, dtype)
    t5 = build_plain_t5(unimse)
    unimse_parameters = [p for p in unimse.parameters() if p.requires_grad]
    t5_parameters = [p for p in t5.parameters() if p.requires_grad]
    return ModelPair(unimse, t5, torch.optim.Adam(unimse_parameters, lr=1e-4), torch.optim.Adam(t5_parameters, lr=1e-4),
                     sum(p.numel() for p in unimse_parameters), sum(p.numel() for p in t5_parameters))


def make_batch(device: torch.device, dtype: torch.dtype, batch_size: int = BATCH_SIZE, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random UniMSE batch of the benchmark's shapes (every frame valid)."""
    generator = torch.Generator().manual_seed(seed)
    batch = {
        "input_ids": torch.randint(5, VOCAB_SIZE, (batch_size, SOURCE_TOKENS), generator=generator),
        "attention_mask": torch.ones(batch_size, SOURCE_TOKENS, dtype=torch.long),
        "labels": torch.randint(5, VOCAB_SIZE, (batch_size, TARGET_TOKENS), generator=generator),
        "acoustic_features": torch.randn(batch_size, ACOUSTIC_FRAMES, FRAME_DIM, generator=generator).to(dtype),
        "acoustic_attention_mask": torch.ones(batch_size, ACOUSTIC_FRAMES, dtype=torch.long),
        "visual_features": torch.randn(batch_size, VISUAL_FRAMES, FRAME_DIM, generator=generator).to(dtype),
        "visual_attention_mask": torch.ones(batch_size, VISUAL_FRAMES, dtype=torch.long),
    }
    return {name: value.to(device) for name, value in batch.items()}


def text_only(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inputs a plain T5 reads from a UniMSE batch."""
    return {name: batch[name] for name in ("input_ids", "attention_mask", "labels")}


def training_loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The trainer's loss: LM cross-entropy plus the weighted InfoNCE terms a UniMSE output carries."""
    outputs = model(**batch)
    loss = outputs.loss
    config = model.config
    for term, weight_name in (("contrastive_loss_ta", "cl_weight_ta"), ("contrastive_loss_tv", "cl_weight_tv")):
        value = getattr(outputs, term, None)
        if value is not None:
            loss = loss + getattr(config, weight_name) * value
    return loss


def training_step_function(model: nn.Module, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor],
                           synchronize: Callable[[], None]) -> Callable[[], None]:
    """A zero-argument training step: zero grads, forward, backward, optimizer step."""
    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        training_loss(model, batch).backward()
        optimizer.step()
        synchronize()
    return step


def eval_forward_function(model: nn.Module, batch: dict[str, torch.Tensor],
                          synchronize: Callable[[], None]) -> Callable[[], None]:
    """A zero-argument teacher-forced eval forward (eval mode, no grad); restores train mode after."""
    def forward() -> None:
        model.eval()
        with torch.no_grad():
            model(**batch)
        synchronize()
        model.train()
    return forward


def count_step_flops(step: Callable[[], None]) -> int:
    """FLOPs of one call of `step` as counted by `FlopCounterMode` (forward and backward)."""
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return counter.get_total_flops()


def fusion_flop_breakdown(model: UniMSEForConditionalGeneration, batch: dict[str, torch.Tensor]) -> dict[str, float]:
    """Forward FLOPs of UniMSE's added modules in one training-mode forward (`FlopCounterMode`, no backward).

    Backward FLOPs are not split per module: the counter's module tracker attributes the backward of
    the whole encoder to the contrastive head whose output starts it. The LSTMs run as one mkldnn op
    that the counter does not count, so their FLOPs are analytic (4 gates x 2 matmuls per frame).
    """
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        training_loss(model, batch)
    parts = {"adapter down_proj": 0.0, "adapter up_proj": 0.0, "adapter out_proj": 0.0, "contrastive projections": 0.0}
    for module_name, per_op in counter.get_flop_counts().items():
        leaf = module_name.split(".")
        if len(leaf) == 4 and leaf[1] in ("encoder_fusion", "decoder_fusion"):
            parts[f"adapter {leaf[3]}"] += sum(per_op.values())
        elif len(leaf) == 3 and leaf[1].endswith("contrastive_head"):
            parts["contrastive projections"] += sum(per_op.values())
    config = model.config
    frames = batch["acoustic_features"].shape[:2].numel() + batch["visual_features"].shape[:2].numel()
    parts["LSTM encoders (analytic)"] = float(frames * 2 * 4 * config.modality_hidden * (FRAME_DIM + config.modality_hidden))
    parts["whole forward"] = counter.get_total_flops()
    return parts


def matmul_peak_flops(device: torch.device, dtype: torch.dtype, sizes: tuple[int, ...], repeats: int,
                      synchronize: Callable[[], None], clock: str) -> tuple[float, int]:
    """Best median FLOP/s of square `torch.mm` over `sizes` on `clock`; returns (FLOP/s, size that gave it)."""
    best = (0.0, sizes[0])
    for size in sizes:
        left = torch.randn(size, size, device=device, dtype=dtype)
        right = torch.randn(size, size, device=device, dtype=dtype)

        def multiply() -> None:
            torch.mm(left, right)
            synchronize()

        summary = interleaved_timings({"mm": multiply}, rounds=repeats, warmup_rounds=1)["mm"].clock(clock)
        rate = 2 * size**3 / summary.median
        if rate > best[0]:
            best = (rate, size)
    return best


def flop_breakdown_lines(pair: ModelPair, batch: dict[str, torch.Tensor]) -> list[str]:
    """Markdown: forward FLOPs of UniMSE's added modules and the whole-step FLOP difference to T5."""
    breakdown = fusion_flop_breakdown(pair.unimse, batch)
    unimse_step_flops = count_step_flops(training_step_function(pair.unimse, pair.unimse_optimizer, batch, lambda: None))
    t5_step_flops = count_step_flops(training_step_function(pair.t5, pair.t5_optimizer, text_only(batch), lambda: None))
    flop_lines = ["Forward FLOPs of UniMSE's added modules in one training-mode forward (`FlopCounterMode`):", ""]
    flop_lines += markdown_table(["part", "forward GFLOP", "share of the UniMSE forward"],
                                 [[part, f"{value / 1e9:.3f}", f"{value / breakdown['whole forward']:.1%}"]
                                  for part, value in breakdown.items()])
    flop_lines += ["", f"Whole training step (forward + backward): UniMSE {unimse_step_flops / 1e9:.2f} GFLOP, T5 "
                   f"{t5_step_flops / 1e9:.2f} GFLOP, difference {(unimse_step_flops - t5_step_flops) / 1e9:.2f} GFLOP "
                   f"({unimse_step_flops / t5_step_flops - 1:.1%} of T5), i.e. the adapters' forward FLOPs about three times "
                   "(forward, weight gradients, input gradients)."]
    return flop_lines


def split_adapter_forward(self: UniMSEFusionAdapter, hidden_states: torch.Tensor, visual: torch.Tensor,
                          acoustic: torch.Tensor) -> torch.Tensor:
    """Prototype PMF adapter forward that never materialises the (batch, length, d + 2m) concat [h; v; a].

    The projections are split into their text and modality columns; the modality parts are computed
    once per sample and broadcast: down = D_h h + (D_s s + b_d), out = W_h (h + up_h) + W_s up_s + (W_s s + b_o).
    The same function as `UniMSEFusionAdapter.forward`, up to float rounding.
    """
    width = hidden_states.shape[-1]
    side = torch.cat([visual, acoustic], dim=-1).to(hidden_states.dtype)
    down_weight, out_weight = self.down_proj.weight, self.out_proj.weight
    down = F.linear(hidden_states, down_weight[:, :width]) + F.linear(side, down_weight[:, width:], self.down_proj.bias).unsqueeze(1)
    up = self.up_proj(self.activation(down))
    return (F.linear(hidden_states + up[..., :width], out_weight[:, :width]) + F.linear(up[..., width:], out_weight[:, width:])
            + F.linear(side, out_weight[:, width:], self.out_proj.bias).unsqueeze(1))


@contextlib.contextmanager
def split_adapter_prototype() -> Iterator[None]:
    """Within the block every UniMSE adapter runs :func:`split_adapter_forward` (a monkeypatch of this process)."""
    original = UniMSEFusionAdapter.forward
    UniMSEFusionAdapter.forward = split_adapter_forward
    try:
        yield
    finally:
        UniMSEFusionAdapter.forward = original


def split_adapter_lines(pair: ModelPair, batch: dict[str, torch.Tensor], rounds: int, clock: str) -> list[str]:
    """Time the split-adapter prototype against today's adapter (train step and eval forward), side by side."""
    pair.unimse.eval()
    with torch.no_grad():
        reference = pair.unimse(**batch).logits
        with split_adapter_prototype():
            difference = (pair.unimse(**batch).logits - reference).abs().max().item()
    pair.unimse.train()

    def prototyped(function: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            with split_adapter_prototype():
                function()
        return run

    train = training_step_function(pair.unimse, pair.unimse_optimizer, batch, lambda: None)
    evaluate = eval_forward_function(pair.unimse, batch, lambda: None)
    timings = interleaved_timings({"train": train, "split_train": prototyped(train), "eval": evaluate,
                                   "split_eval": prototyped(evaluate)}, rounds=rounds, warmup_rounds=1)
    return [f"Tried: the adapter with split projections ({rounds} interleaved rounds; logits differ from today's by at "
            f"most {difference:.1e}): split / today's = training step "
            f"{ratio_of(timings, 'split_train', 'train', clock).describe()}, eval forward "
            f"{ratio_of(timings, 'split_eval', 'eval', clock).describe()} ({clock} time)."]


def profile_training_steps(pair: ModelPair, batch: dict[str, torch.Tensor], row_limit: int = 12) -> list[str]:
    """Profile one UniMSE and one T5 training step with `torch.profiler` (CPU) and describe where the extra time goes.

    The fusion modules' forward calls are wrapped in labelled `record_function` ranges (a monkeypatch
    in this process only) so their forward time is named; backward time is listed per autograd op.
    """
    from torch.profiler import ProfilerActivity, profile, record_function

    original_adapter, original_encoder = UniMSEFusionAdapter.forward, UniMSEModalityEncoder.forward
    original_contrastive = UniMSEForConditionalGeneration._contrastive_terms

    def labelled(label: str, function: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            with record_function(label):
                return function(*args, **kwargs)
        return wrapper

    UniMSEFusionAdapter.forward = labelled("unimse::pmf_adapter_forward", original_adapter)
    UniMSEModalityEncoder.forward = labelled("unimse::lstm_encoder_forward", original_encoder)
    UniMSEForConditionalGeneration._contrastive_terms = labelled("unimse::contrastive_terms", original_contrastive)
    try:
        totals: dict[str, dict[str, float]] = {}
        step_seconds: dict[str, float] = {}
        for name, model, optimizer, inputs in (("UniMSE", pair.unimse, pair.unimse_optimizer, batch),
                                               ("T5", pair.t5, pair.t5_optimizer, text_only(batch))):
            step = training_step_function(model, optimizer, inputs, lambda: None)
            step()
            with profile(activities=[ProfilerActivity.CPU]) as profiler:
                step()
            averages = profiler.key_averages()
            totals[name] = {event.key: event.self_cpu_time_total / 1e6 for event in averages}
            step_seconds[name] = sum(totals[name].values())
            if name == "UniMSE":
                labelled_ranges = {event.key: event.cpu_time_total / 1e6 for event in averages
                                   if event.key.startswith("unimse::")}
    finally:
        UniMSEFusionAdapter.forward, UniMSEModalityEncoder.forward = original_adapter, original_encoder
        UniMSEForConditionalGeneration._contrastive_terms = original_contrastive
    lines = [f"`torch.profiler` (CPU), one step each, ops' self time summed (wall time per op, so it moves with the load of a shared machine; the FLOP counts above do not): UniMSE {step_seconds['UniMSE']:.3f} s, "
             f"T5 {step_seconds['T5']:.3f} s, difference {step_seconds['UniMSE'] - step_seconds['T5']:+.3f} s.", "",
             "Forward time inside the UniMSE modules (inclusive CPU time of the labelled ranges):", ""]
    lines += markdown_table(["range", "CPU s", "share of the UniMSE step"],
                            [[key, f"{value:.3f}", f"{value / step_seconds['UniMSE']:.1%}"]
                             for key, value in sorted(labelled_ranges.items())])
    keys = set(totals["UniMSE"]) | set(totals["T5"])
    differences = sorted(keys, key=lambda key: totals["UniMSE"].get(key, 0.0) - totals["T5"].get(key, 0.0), reverse=True)
    lines += ["", f"Ops with the largest extra self CPU time in UniMSE (top {row_limit}):", ""]
    lines += markdown_table(["op", "UniMSE s", "T5 s", "extra s"],
                            [[f"`{key}`", f"{totals['UniMSE'].get(key, 0.0):.3f}", f"{totals['T5'].get(key, 0.0):.3f}",
                              f"{totals['UniMSE'].get(key, 0.0) - totals['T5'].get(key, 0.0):+.3f}"]
                             for key in differences[:row_limit]])
    return lines


def memory_probe(model_kind: str, size: str) -> dict[str, float]:
    """In this (fresh) process: build a model, reset the RSS high-water mark, run two training steps, report MiB."""
    device, dtype = torch.device("cpu"), torch.float32
    unimse = build_unimse(size, device, dtype)
    model: nn.Module = unimse if model_kind == "unimse" else build_plain_t5(unimse)
    if model_kind != "unimse":
        del unimse
    batch = make_batch(device, dtype)
    inputs = batch if model_kind == "unimse" else text_only(batch)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    import gc
    gc.collect()
    before = _proc_status_mib("VmRSS")
    with open("/proc/self/clear_refs", "w", encoding="utf-8") as handle:
        handle.write("5")
    step = training_step_function(model, optimizer, inputs, lambda: None)
    step()
    first_peak = _proc_status_mib("VmHWM")
    step()
    return {"rss_before_mib": before, "peak_first_step_mib": first_peak, "peak_two_steps_mib": _proc_status_mib("VmHWM"),
            "parameters": sum(p.numel() for p in model.parameters()),
            "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad)}


def _proc_status_mib(field_name: str) -> float:
    """A `kB` field of /proc/self/status in MiB."""
    with open("/proc/self/status", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field_name}")


def run_memory_probe_subprocess(model_kind: str, size: str, threads: int) -> dict[str, float]:
    """Run :func:`memory_probe` in a fresh interpreter and return its JSON result."""
    completed = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--memory-probe", model_kind, "--sizes", size,
         "--threads", str(threads)],
        cwd=str(REPO_ROOT), capture_output=True, text=True, check=True,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def measure_size(size: str, rounds: int, device: torch.device, dtype: torch.dtype,
                 synchronize: Callable[[], None], clock: str) -> dict[str, object]:
    """Time UniMSE vs T5 training steps and eval forwards at one size; count FLOPs; keep the pair for profiling."""
    pair = build_pair(size, device, dtype)
    batch = make_batch(device, dtype)
    candidates = {
        "unimse_train": training_step_function(pair.unimse, pair.unimse_optimizer, batch, synchronize),
        "t5_train": training_step_function(pair.t5, pair.t5_optimizer, text_only(batch), synchronize),
        "unimse_eval": eval_forward_function(pair.unimse, batch, synchronize),
        "t5_eval": eval_forward_function(pair.t5, text_only(batch), synchronize),
    }
    flops = {"unimse": count_step_flops(candidates["unimse_train"]), "t5": count_step_flops(candidates["t5_train"]),
             "unimse_eval": count_step_flops(candidates["unimse_eval"]), "t5_eval": count_step_flops(candidates["t5_eval"])}
    timings = interleaved_timings(candidates, rounds=rounds, warmup_rounds=1)
    return {"pair": pair, "batch": batch, "timings": timings, "flops": flops,
            "train_ratio": ratio_of(timings, "unimse_train", "t5_train", clock),
            "eval_ratio": ratio_of(timings, "unimse_eval", "t5_eval", clock),
            "train_ratio_other": ratio_of(timings, "unimse_train", "t5_train", "wall" if clock == "cpu" else "cpu"),
            "eval_ratio_other": ratio_of(timings, "unimse_eval", "t5_eval", "wall" if clock == "cpu" else "cpu")}


def main() -> int:
    """Run the benchmark (or one memory probe) and write `benchmarks/results/fusion_overhead.md`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["t5-small", "t5-base"], choices=sorted(T5_DIMENSIONS))
    parser.add_argument("--rounds", type=int, nargs="+", default=[12, 7],
                        help="timed interleaved rounds per size (one value, or one per size)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0 = torch's default). Default 1: "
                        "on a shared machine the CPU time of one thread measures the work itself")
    parser.add_argument("--clock", default=None, choices=["cpu", "wall"],
                        help="clock of the ratios (default: cpu on the CPU, wall on a GPU)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--no-profile", action="store_true", help="skip the torch.profiler section")
    parser.add_argument("--no-prototype", action="store_true", help="skip timing the split-adapter prototype")
    parser.add_argument("--memory-probe", choices=["unimse", "t5"], help=argparse.SUPPRESS)
    parser.add_argument("--output-name", default=None, help="result file name (default: fusion_overhead, or "
                        "fusion_overhead_<device>_<dtype> off the CPU float32 default)")
    args = parser.parse_args()
    if args.memory_probe:
        set_thread_count(args.threads)
        print(json.dumps(memory_probe(args.memory_probe, args.sizes[0])))
        return 0

    started = time.perf_counter()
    threads = set_thread_count(args.threads)
    machine = machine_description()
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    clock = args.clock or ("cpu" if device.type == "cpu" else "wall")
    other_clock = "wall" if clock == "cpu" else "cpu"
    if device.type == "cuda" and not torch.cuda.is_available():
        print("not measured: no GPU available")
        return 0
    synchronize: Callable[[], None] = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    rounds_per_size = dict(zip(args.sizes, args.rounds if len(args.rounds) == len(args.sizes) else args.rounds[:1] * len(args.sizes)))
    name = args.output_name or ("fusion_overhead" if (device.type, args.dtype) == ("cpu", "float32")
                                else f"fusion_overhead_{device.type}_{args.dtype}")

    peak_rate, peak_size = matmul_peak_flops(device, dtype, (1024, 2048), repeats=5, synchronize=synchronize, clock=clock)
    results = {}
    for size in args.sizes:
        results[size] = measure_size(size, rounds_per_size[size], device, dtype, synchronize, clock)
        print(f"{size}: train ratio {results[size]['train_ratio'].describe()}, eval ratio {results[size]['eval_ratio'].describe()}",
              flush=True)

    body = [
        f"Random weights; batch {BATCH_SIZE}, {SOURCE_TOKENS} source and {TARGET_TOKENS} target tokens, acoustic "
        f"{ACOUSTIC_FRAMES}x{FRAME_DIM} and visual {VISUAL_FRAMES}x{FRAME_DIM} frames; device `{device}`, dtype `{args.dtype}`. "
        "UniMSE uses its config defaults (PMF adapters in the last 3 blocks of encoder and decoder, InfoNCE on, so the "
        "step's loss is LM + 0.5 InfoNCE(t,a) + 0.5 InfoNCE(t,v), as `UniMSETrainer` computes it). The plain "
        "`T5ForConditionalGeneration` has the same dimensions and backbone weights and trains the same T5 blocks. "
        "Step = `zero_grad` + forward + backward + `torch.optim.Adam.step`; eval = teacher-forced forward, eval "
        "mode, `torch.no_grad()`. Times are medians [IQR] in seconds over interleaved rounds (one warm-up round "
        f"first); ratios are medians [IQR] of the per-round UniMSE/T5 ratios. torch threads: {threads}. The goal "
        f"column judges the {clock}-time ratio" + (" (CPU time of the process: with one thread it counts only this "
        "job's work, so other jobs on the shared cores do not move it; wall-time ratios are shown beside it)."
        if clock == "cpu" else "."),
        "",
        "### 1. Fusion overhead",
        "",
    ]
    rows, goals = [], []
    for size, result in results.items():
        timings = result["timings"]
        goal = RATIO_GOALS[size]
        for kind, label in (("train", "training step"), ("eval", "eval forward")):
            ratio = result[f"{kind}_ratio"]
            verdict = "met" if ratio.median <= goal else f"**missed** by {ratio.median - goal:+.3f}"
            flops = result["flops"]
            flop_ratio = flops["unimse"] / flops["t5"] if kind == "train" else flops["unimse_eval"] / flops["t5_eval"]
            rows.append([size, label, len(timings[f"unimse_{kind}"].cpu.samples),
                         timings[f"unimse_{kind}"].clock(clock).describe(), timings[f"t5_{kind}"].clock(clock).describe(),
                         f"**{ratio.describe()}**", result[f"{kind}_ratio_other"].describe(), f"{flop_ratio:.3f}",
                         f"<= {goal:.2f}: {verdict}"])
            goals.append(goal_comment(f"{size} {label}, UniMSE / T5 ({clock} time)", ratio.describe(),
                                      f"<= {goal:.2f}: {verdict}"))
    body += markdown_table(["dims", "measurement", "rounds", f"UniMSE {clock} s", f"T5 {clock} s",
                            f"ratio UniMSE/T5 ({clock})", f"ratio ({other_clock})", "FLOP ratio", "goal"], rows)
    body += goals
    body += ["", "The FLOP ratio is that of `FlopCounterMode` counts (matmuls and attention) of the same call. Where the "
             "time ratio sits at the FLOP ratio, UniMSE's extra time is the extra arithmetic of its adapters, run at the "
             "same FLOP/s as T5 (section 2), not implementation overhead."]
    body += ["", "Trainable parameters: " + "; ".join(
        f"{size}: UniMSE {result['pair'].unimse_trainable / 1e6:.2f} M, T5 {result['pair'].t5_trainable / 1e6:.2f} M"
        for size, result in results.items()) + "."]

    body += ["", "### 2. Hardware efficiency", "",
             f"Measured {args.dtype} matmul peak on `{device}`: {peak_rate / 1e9:.1f} GFLOP/s (best median of "
             f"square `torch.mm`, n = {peak_size}). FLOPs of one training step from `torch.utils.flop_counter` "
             "(matmuls, attention; element-wise ops and Adam are not counted), divided by the median step time above "
             f"({clock} time, {threads} thread(s); the peak is measured the same way).", ""]
    rows = []
    for size, result in results.items():
        for model_key, model_name in (("unimse", "UniMSE"), ("t5", "T5")):
            seconds = result["timings"][f"{model_key}_train"].clock(clock).median
            achieved = result["flops"][model_key] / seconds
            rows.append([size, model_name, f"{result['flops'][model_key] / 1e9:.1f}", f"{seconds:.3f}",
                         f"{achieved / 1e9:.1f}", f"{achieved / peak_rate:.1%}"])
    body += markdown_table(["dims", "model", "GFLOP per step", f"median step {clock} s", "achieved GFLOP/s", "of matmul peak"], rows)
    body += ["", "GPU bfloat16: not measured: no GPU available (run `python benchmarks/bench_fusion_overhead.py "
             "--device cuda --dtype bfloat16` on a machine with one; it writes `fusion_overhead_cuda_bfloat16.md`)."
             if device.type == "cpu" else f"This run is the `{device}` `{args.dtype}` measurement."]

    if not args.no_memory and device.type == "cpu" and "t5-base" in T5_DIMENSIONS:
        memory = {kind: run_memory_probe_subprocess(kind, "t5-base", threads) for kind in ("unimse", "t5")}
        body += ["", "### 5b. Peak memory of a t5-base training step (batch 8)", "",
                 "Method: a fresh subprocess per model builds it and its Adam optimizer, records the resident set "
                 "(`VmRSS`), resets the kernel's high-water mark (`echo 5 > /proc/self/clear_refs`) and runs two "
                 "training steps; the peak is `VmHWM` from `/proc/self/status` (whole process: weights, "
                 "activations, gradients, Adam states, allocator caches).", ""]
        body += markdown_table(
            ["model", "params", "trainable", "RSS before steps MiB", "peak, step 1 MiB", "peak, 2 steps MiB", "step peak - before MiB"],
            [[kind, f"{m['parameters'] / 1e6:.1f} M", f"{m['trainable'] / 1e6:.1f} M", f"{m['rss_before_mib']:.0f}",
              f"{m['peak_first_step_mib']:.0f}", f"{m['peak_two_steps_mib']:.0f}",
              f"{m['peak_two_steps_mib'] - m['rss_before_mib']:.0f}"] for kind, m in memory.items()])

    body += ["", "### Where UniMSE's extra work is", ""]
    for size, result in results.items():
        body += [f"#### {size}", "", *flop_breakdown_lines(result["pair"], result["batch"]), ""]
        if device.type == "cpu" and not args.no_prototype:
            body += [*split_adapter_lines(result["pair"], result["batch"], max(4, rounds_per_size[size] // 2), clock), ""]

    missed = [size for size, result in results.items()
              if max(quartiles(result["train_ratio"].ratios)[1], quartiles(result["eval_ratio"].ratios)[1]) > RATIO_GOALS[size]]
    if missed and not args.no_profile and device.type == "cpu":
        body += ["", "### Profile where a goal is missed or its upper quartile crosses it", ""]
        for size in missed:
            body += [f"#### {size}", ""]
            body += profile_training_steps(results[size]["pair"], results[size]["batch"])
            body += [""]
    body += ["", f"Load average at the end: {load_average()}."]
    path = write_result(name, "Fusion overhead, hardware efficiency and training memory", body,
                        started_at=started, machine=machine)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

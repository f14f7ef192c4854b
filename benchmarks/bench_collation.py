# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Collation throughput (rows -> model batches) against what a training step consumes.

Rows follow the UniMSE row schema (`id`, `text`, `acoustic`, `visual`, `word_timestamps`, `target`, ...).
They are collated in batches of 8 by `UniMSEDataCollator` when `unimse_hf.data_collator` is importable,
otherwise by `UniMSEProcessor.__call__` on the rows' columns (the result says which). Four row shapes are
timed side by side: the training-step benchmark's frames (50x64 acoustic, 30x64 visual) and MOSEI-like
frame-level clips (700x64 at 100 fps, 210x64 at 30 fps), each with frames as numpy arrays (a dataset in
numpy format) and as nested Python lists (what `datasets` returns by default). The consumer is the
UniMSE training step at t5-small dimensions, batch 8, measured here the same way (CPU time, one thread).

Usage::

    python benchmarks/bench_collation.py [--rounds 30] [--train-rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench_fusion_overhead import build_unimse, make_batch, training_step_function  # noqa: E402
from common import (  # noqa: E402
    REPO_ROOT, goal_comment, interleaved_timings, machine_description, markdown_table, set_thread_count, write_result,
)
from unimse_hf import UniMSEProcessor  # noqa: E402

BATCH_SIZE = 8
THROUGHPUT_GOAL = 10.0
WORDS = "the movie was really good but the ending felt slow and i think the acting could be better overall".split()
ROW_SHAPES = {
    "training-step frames (50x64, 30x64)": (50, 30),
    "MOSEI-like clips (700x64, 210x64)": (700, 210),
}


def make_rows(count: int, acoustic_frames: int, visual_frames: int, as_lists: bool, seed: int = 0) -> list[dict[str, Any]]:
    """`count` schema rows with ~20-word texts, word timestamps, universal-label targets and random frames."""
    rng = np.random.default_rng(seed)
    rows = []
    for index in range(count):
        words = list(rng.choice(WORDS, size=int(rng.integers(16, 25))))
        duration = acoustic_frames / 100.0
        bounds = np.linspace(0.0, duration, len(words) + 1)
        acoustic = rng.standard_normal((acoustic_frames, 64), dtype=np.float32)
        visual = rng.standard_normal((visual_frames, 64), dtype=np.float32)
        rows.append({
            "id": f"bench/train/{index}", "dataset": "mosei", "split": "train", "text": " ".join(words),
            "context": None, "speaker": None,
            "acoustic": acoustic.tolist() if as_lists else acoustic,
            "visual": visual.tolist() if as_lists else visual,
            "word_timestamps": [{"word": w, "start": float(s), "end": float(e)}
                                for w, s, e in zip(words, bounds[:-1], bounds[1:])],
            "score": 1.0, "polarity": "positive", "meld_emotion": "joy", "iemocap_emotion": "joy",
            "target": "positive,1.0,joy,joy",
        })
    return rows


def make_collate_function(processor: UniMSEProcessor) -> tuple[Callable[[list[dict[str, Any]]], dict], str]:
    """The collator under test and its description: `UniMSEDataCollator` if importable, else the processor on rows."""
    try:
        from unimse_hf.data_collator import UniMSEDataCollator
    except ImportError as error:
        def collate(rows: list[dict[str, Any]]) -> dict:
            return dict(processor([row["text"] for row in rows],
                                  acoustic=[np.asarray(row["acoustic"], dtype=np.float32) for row in rows],
                                  visual=[np.asarray(row["visual"], dtype=np.float32) for row in rows],
                                  labels=[row["target"] for row in rows], return_tensors="pt"))
        return collate, f"`UniMSEProcessor.__call__` on the rows' columns (`UniMSEDataCollator` not importable: {error})"
    return UniMSEDataCollator(processor), "`unimse_hf.data_collator.UniMSEDataCollator(processor)` (frame-level, no word alignment)"


def main() -> int:
    """Time collation of the four row kinds and the t5-small training step; write the result."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30, help="interleaved rounds; each times --calls collations")
    parser.add_argument("--calls", type=int, default=4, help="collation calls (batches) timed together per sample")
    parser.add_argument("--train-rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0 = torch's default)")
    args = parser.parse_args()
    started = time.perf_counter()
    threads = set_thread_count(args.threads)
    machine = machine_description()
    processor = UniMSEProcessor.from_tokenizer_dir(REPO_ROOT / "data" / "t5", acoustic_dim=64, visual_dim=64,
                                                   acoustic_frame_rate=100.0, visual_frame_rate=30.0)
    collate, collator_description = make_collate_function(processor)

    candidates: dict[str, Callable[[], object]] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    for shape_name, (acoustic_frames, visual_frames) in ROW_SHAPES.items():
        for as_lists in (False, True):
            rows = make_rows(BATCH_SIZE, acoustic_frames, visual_frames, as_lists)
            name = f"{shape_name}, frames as {'nested lists' if as_lists else 'numpy arrays'}"
            candidates[name] = (lambda rows=rows: collate(rows))
            batch = collate(rows)
            shapes[name] = tuple(batch["acoustic_features"].shape)
    if hasattr(collate, "use_word_timestamps"):
        from unimse_hf.data_collator import UniMSEDataCollator

        aligning = UniMSEDataCollator(processor, use_word_timestamps=True)
        rows = make_rows(BATCH_SIZE, *ROW_SHAPES["MOSEI-like clips (700x64, 210x64)"], as_lists=False)
        name = "MOSEI-like clips, numpy arrays, token-aligned (`use_word_timestamps=True`)"
        candidates[name] = (lambda rows=rows: aligning(rows))
        shapes[name] = tuple(aligning(rows)["acoustic_features"].shape)
    collation = interleaved_timings(candidates, rounds=args.rounds, warmup_rounds=1, calls_per_sample=args.calls)

    model = build_unimse("t5-small", torch.device("cpu"), torch.float32)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    step = training_step_function(model, optimizer, make_batch(torch.device("cpu"), torch.float32), lambda: None)
    training = interleaved_timings({"train": step}, rounds=args.train_rounds, warmup_rounds=1)["train"].cpu
    train_samples_per_second = BATCH_SIZE / training.median

    rows, goals = [], []
    for name, timing in collation.items():
        samples_per_second = [BATCH_SIZE / seconds for seconds in timing.cpu.samples]
        median = statistics.median(samples_per_second)
        ratio = median / train_samples_per_second
        rows.append([name, "x".join(map(str, shapes[name])), f"{timing.cpu.median * 1e3:.2f} [{timing.cpu.quartiles[0] * 1e3:.2f}, "
                     f"{timing.cpu.quartiles[1] * 1e3:.2f}]", f"{median:,.0f}", f"**{ratio:,.0f}x**",
                     f">= {THROUGHPUT_GOAL:.0f}x: " + ("met" if ratio >= THROUGHPUT_GOAL else "**missed**")])
        goals.append(goal_comment(f"collation / t5-small training step samples/s: {name}", f"{ratio:,.0f}x",
                                  rows[-1][-1]))
    body = [
        f"Collator: {collator_description}. Batches of {BATCH_SIZE} rows with ~20-word texts and universal-label "
        f"targets. CPU time of the process ({threads} torch thread), medians [IQR] over {args.rounds} interleaved "
        f"rounds of {args.calls} calls after one warm-up round.",
        "",
        f"Consumer: UniMSE training step at t5-small dimensions, batch {BATCH_SIZE} (as in `fusion_overhead.md`): "
        f"{training.describe()} s CPU per step over {args.train_rounds} steps = **{train_samples_per_second:.1f} samples/s**.",
        "",
    ]
    body += markdown_table(["rows", "acoustic batch shape", "ms per batch", "samples/s", "vs training step", "goal"], rows)
    body += goals
    body += ["", "A DataLoader worker (`num_workers >= 1`) runs collation off the training process; the ratio above is "
             "per core, so even one worker keeps the step fed when the ratio is above 1. The consumer here is a CPU step; "
             "a GPU step is faster by its GPU/CPU speed ratio (not measured: no GPU on this machine), which divides "
             "these margins: rows in numpy format (`dataset.with_format(\"numpy\")`) keep the largest."]
    path = write_result("collation", "Collation throughput", body, started_at=started, machine=machine)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

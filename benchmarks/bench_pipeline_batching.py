# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""The pipeline on 32 inputs: one call per input against one batched call (`batch_size=32`).

A randomly initialised UniMSE (t5-small dimensions by default) behind `UniMSEPipeline` predicts 32
real MOSI test transcripts with random 50x64 acoustic / 30x64 visual frames (every third input without
visual frames, every fifth text only), greedy with the label grammar. "one by one" calls the pipeline
once per input; "batched" passes the list with `batch_size=32` (one padded batch, one `generate`).
Both run with and without `return_emotion_scores` (the seven MELD candidates scored per input). The two
candidates of a setting run side by side in interleaved rounds; the speed-up is the median [IQR] of the
per-round ratios of CPU time, and every round checks that both give the same label strings.

Usage::

    python benchmarks/bench_pipeline_batching.py [--size t5-small] [--rounds 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench_fusion_overhead import T5_DIMENSIONS, VOCAB_SIZE  # noqa: E402
from common import (  # noqa: E402
    REPO_ROOT, RatioSummary, goal_comment, interleaved_timings, machine_description, markdown_table,
    set_thread_count, write_result,
)
from unimse_hf import PIPELINE_TASK, UniMSEConfig, UniMSEForConditionalGeneration, UniMSEPipeline, UniMSEProcessor  # noqa: E402

BATCH = 32
SPEEDUP_GOAL = 5.0


def mosi_test_transcripts(count: int) -> list[str]:
    """The first `count` transcripts of the MOSI test split shipped in data/mosi/label.csv."""
    with open(REPO_ROOT / "data" / "mosi" / "label.csv", newline="", encoding="utf-8") as handle:
        texts = [row["text"] for row in csv.DictReader(handle) if row["mode"] == "test" and row["text"].strip()]
    return texts[:count]


def pipeline_inputs(count: int, seed: int = 0) -> list[dict]:
    """`count` inputs: transcripts with acoustic frames, visual frames on two of three, every fifth text only."""
    rng = np.random.default_rng(seed)
    inputs = []
    for i, text in enumerate(mosi_test_transcripts(count)):
        item: dict = {"text": text}
        if i % 5 != 4:
            item["acoustic"] = rng.standard_normal((50, 64), dtype=np.float32)
            if i % 3 != 2:
                item["visual"] = rng.standard_normal((30, 64), dtype=np.float32)
        inputs.append(item)
    return inputs


def main() -> int:
    """Time one-by-one against batched pipeline calls on 32 inputs and write the result section."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="t5-small", choices=sorted(T5_DIMENSIONS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0 = torch's default)")
    args = parser.parse_args()
    started = time.perf_counter()
    threads = set_thread_count(args.threads)
    machine = machine_description()

    processor = UniMSEProcessor.from_tokenizer_dir(REPO_ROOT / "data" / "t5", acoustic_dim=64, visual_dim=64)
    torch.manual_seed(0)
    config = UniMSEConfig(**T5_DIMENSIONS[args.size], vocab_size=VOCAB_SIZE, acoustic_dim=64, visual_dim=64)
    pipe = UniMSEPipeline(model=UniMSEForConditionalGeneration(config).eval(), processor=processor, task=PIPELINE_TASK)
    inputs = pipeline_inputs(BATCH)

    rows, goals, agreement = [], [], []
    for scores in (False, True):
        results: dict[str, list] = {"one by one": [], "batched": []}

        def one_by_one(scores: bool = scores) -> None:
            results["one by one"].append([pipe(item, return_emotion_scores=scores) for item in inputs])

        def batched(scores: bool = scores) -> None:
            results["batched"].append(pipe(inputs, batch_size=BATCH, return_emotion_scores=scores))

        timings = interleaved_timings({"one by one": one_by_one, "batched": batched}, rounds=args.rounds)
        same = all([r["label"] for r in a] == [r["label"] for r in b]
                   for a, b in zip(results["one by one"], results["batched"]))
        agreement.append(same)
        ratio = RatioSummary([single / batch for single, batch in zip(timings["one by one"].cpu.samples,
                                                                      timings["batched"].cpu.samples)])
        wall_ratio = RatioSummary([single / batch for single, batch in zip(timings["one by one"].wall.samples,
                                                                           timings["batched"].wall.samples)])
        setting = "with emotion scores" if scores else "labels only"
        verdict = f">= {SPEEDUP_GOAL:g}x: " + ("met" if ratio.median >= SPEEDUP_GOAL else "**missed**")
        rows.append([setting, timings["one by one"].cpu.describe(), timings["batched"].cpu.describe(),
                     f"{BATCH / timings['one by one'].cpu.median:.1f}", f"{BATCH / timings['batched'].cpu.median:.1f}",
                     f"**{ratio.describe(2)}x**", f"{wall_ratio.describe(2)}x", "yes" if same else "**no**", verdict])
        goals.append(goal_comment(f"batched / one-by-one pipeline throughput at batch {BATCH}, {setting} (cpu time)",
                                  f"{ratio.describe(2)}x", verdict))
        print(f"{setting}: batched speed-up {ratio.describe(2)}x (labels equal: {same})", flush=True)

    body = [
        f"Random UniMSE at {args.size} dimensions behind `UniMSEPipeline`, greedy with the label grammar, on "
        f"{BATCH} real MOSI test transcripts with random 50x64 acoustic and 30x64 visual frames (every third "
        "input without visual frames, every fifth text only). *One by one*: one pipeline call per input. "
        f"*Batched*: `pipe(inputs, batch_size={BATCH})`, one padded batch and one `generate`; with emotion "
        "scores, one decoder pass over the tokens the 7 candidates of each input share and one over all 7 x 32 "
        "candidates' own tokens, from the encoder outputs of the generation. CPU seconds "
        f"of the process per {BATCH} inputs ({threads} torch thread), medians [IQR] over {args.rounds} interleaved "
        "rounds after one warm-up round; the speed-up is the median [IQR] of the per-round ratios.",
        "",
    ]
    body += markdown_table(["setting", f"one by one, s / {BATCH}", f"batched, s / {BATCH}", "one by one, inputs / s",
                            "batched, inputs / s", "speed-up (cpu)", "speed-up (wall)", "same labels",
                            "goal"], rows)
    body += goals
    path = write_result("pipeline_batching", "Batched pipeline against one call per input", body,
                        started_at=started, machine=machine)
    print(f"wrote {path}")
    return 0 if all(agreement) else 1


if __name__ == "__main__":
    sys.exit(main())

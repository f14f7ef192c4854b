# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Greedy generation of the universal label: latency at batch 1, throughput at batch 32, structured decoding.

A randomly initialised UniMSE at t5-base dimensions (the paper's size) generates greedily with the KV
cache (`use_cache=True`) from 32-token inputs with 50x64 acoustic and 30x64 visual frames, plain and
with `UniversalLabelLogitsProcessor` (structured decoding). Structured decoding gets
`max_new_tokens` = the processor's `max_label_tokens` (the longest label + EOS) and stops once every row
has closed its label; an untrained model never emits EOS by itself, so plain greedy gets exactly the
number of steps structured decoding ran on the same inputs, and the two calls do equal work. Parse failures count outputs that `parse_universal_label` rejects.

Usage::

    python benchmarks/bench_generation.py [--size t5-base] [--rounds-batch1 8] [--rounds-batch32 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from transformers import LogitsProcessorList  # noqa: E402

from bench_fusion_overhead import T5_DIMENSIONS, VOCAB_SIZE  # noqa: E402
from common import (  # noqa: E402
    REPO_ROOT, goal_comment, interleaved_timings, machine_description, markdown_table, quartiles, set_thread_count, write_result,
)
from unimse_hf import UniMSEConfig, UniMSEForConditionalGeneration, UniMSEProcessor  # noqa: E402
from unimse_hf.label_grammar import UniversalLabelLogitsProcessor  # noqa: E402
from unimse_hf.labels import parse_universal_label  # noqa: E402

COST_GOAL = 1.2
SENTENCES = (
    "the movie was really good and the acting felt natural from start to finish",
    "i did not like the ending at all it was slow and the plot made no sense",
    "honestly it was okay some scenes were funny but most of it was boring",
    "what a beautiful film the music and the camera work were amazing",
)


def generation_inputs(processor: UniMSEProcessor, batch_size: int, seed: int) -> dict[str, torch.Tensor]:
    """Processor outputs for `batch_size` utterances (cycled sentences, random 50x64 / 30x64 frames)."""
    rng = np.random.default_rng(seed)
    texts = [SENTENCES[(seed + i) % len(SENTENCES)] + f" take {seed + i}" for i in range(batch_size)]
    acoustic = [rng.standard_normal((50, 64), dtype=np.float32) for _ in range(batch_size)]
    visual = [rng.standard_normal((30, 64), dtype=np.float32) for _ in range(batch_size)]
    return dict(processor(texts, acoustic=acoustic, visual=visual, return_tensors="pt"))


def generate_function(model: UniMSEForConditionalGeneration, inputs: dict[str, torch.Tensor], max_new_tokens: int,
                      logits_processor: LogitsProcessorList | None, outputs: list[torch.Tensor]) -> Callable[[], None]:
    """A zero-argument greedy `generate` call (KV cache on) that appends its sequences to `outputs`."""
    def run() -> None:
        sequences = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                                   use_cache=True, logits_processor=logits_processor)
        outputs.append(sequences)
    return run


def main() -> int:
    """Time plain and structured greedy decoding at batch 1 and 32; count parse failures; write the result."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="t5-base", choices=sorted(T5_DIMENSIONS))
    parser.add_argument("--rounds-batch1", type=int, default=8)
    parser.add_argument("--rounds-batch32", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0 = torch's default)")
    args = parser.parse_args()
    started = time.perf_counter()
    threads = set_thread_count(args.threads)
    machine = machine_description()

    processor = UniMSEProcessor.from_tokenizer_dir(REPO_ROOT / "data" / "t5", acoustic_dim=64, visual_dim=64)
    constraint = UniversalLabelLogitsProcessor(processor.tokenizer)
    max_new_tokens = constraint.max_label_tokens
    torch.manual_seed(0)
    config = UniMSEConfig(**T5_DIMENSIONS[args.size], vocab_size=VOCAB_SIZE, acoustic_dim=64, visual_dim=64)
    model = UniMSEForConditionalGeneration(config).eval()

    rows, step_ratio_cells, parse_rows, goals = [], {}, [], []
    for batch_size, rounds in ((1, args.rounds_batch1), (32, args.rounds_batch32)):
        inputs = generation_inputs(processor, batch_size, seed=batch_size)
        produced: dict[str, list[torch.Tensor]] = {"plain": [], "structured": []}
        # Plain greedy gets exactly the steps structured decoding needs here, so both calls do equal work.
        structured_steps = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                                          logits_processor=LogitsProcessorList([constraint])).shape[1] - 1
        candidates = {
            "plain": generate_function(model, inputs, structured_steps, None, produced["plain"]),
            "structured": generate_function(model, inputs, max_new_tokens, LogitsProcessorList([constraint]),
                                            produced["structured"]),
        }
        timings = interleaved_timings(candidates, rounds=rounds, warmup_rounds=1)
        steps = {name: produced[name][-1].shape[1] - 1 for name in produced}
        per_step = {name: [seconds / steps[name] for seconds in timings[name].cpu.samples] for name in produced}
        step_ratios = [top / bottom for top, bottom in zip(per_step["structured"], per_step["plain"])]
        call_ratios = [top / bottom for top, bottom in zip(timings["structured"].cpu.samples, timings["plain"].cpu.samples)]
        for name in produced:
            texts = processor.batch_decode(produced[name][-1])
            failures = sum(not parse_universal_label(text).valid for text in texts)
            per_utterance = timings[name].cpu.median / batch_size
            rows.append([batch_size, name, len(timings[name].cpu.samples), timings[name].cpu.describe(),
                         steps[name], f"{statistics.median(per_step[name]) * 1e3:.1f}",
                         f"{per_utterance * 1e3:.1f}", f"{batch_size / timings[name].cpu.median:.2f}"])
            parse_rows.append([batch_size, name, f"{failures} / {len(texts)}", f"`{texts[0][:60]}`"])
        low, high = quartiles(step_ratios)
        call_low, call_high = quartiles(call_ratios)
        call_median = statistics.median(call_ratios)
        step_ratio_cells[batch_size] = [batch_size, f"{steps['plain']} / {steps['structured']}",
                                        f"**{call_median:.3f} [{call_low:.3f}, {call_high:.3f}]**",
                                        f"{statistics.median(step_ratios):.3f} [{low:.3f}, {high:.3f}]",
                                        f"<= {COST_GOAL}: " + ("met" if call_median <= COST_GOAL else "**missed**")]
        goals.append(goal_comment(f"structured / plain greedy per call, batch {batch_size}",
                                  step_ratio_cells[batch_size][2].strip("*"), step_ratio_cells[batch_size][-1]))
        failures_structured = sum(not parse_universal_label(text).valid
                                  for text in processor.batch_decode(produced["structured"][-1]))
        goals.append(goal_comment(f"parse failures with structured decoding, batch {batch_size}",
                                  f"{failures_structured} / {batch_size}", "0: " + ("met" if failures_structured == 0 else "**missed**")))
        print(f"batch {batch_size}: structured/plain per call {step_ratio_cells[batch_size][2]}", flush=True)

    body = [
        f"Random UniMSE at {args.size} dimensions, greedy (`num_beams=1`, `do_sample=False`), KV cache on. "
        f"Structured decoding: `UniversalLabelLogitsProcessor`, `max_new_tokens={max_new_tokens}` (its "
        "`max_label_tokens`); it stops when every row has closed its label. An untrained model never emits EOS, "
        "so plain greedy gets `max_new_tokens` = the steps structured decoding ran on the same inputs. Inputs: "
        "32-ish source tokens with the task prefix, 50x64 acoustic and 30x64 visual frames. Times are CPU seconds "
        f"of the process ({threads} torch thread), medians [IQR] over interleaved rounds after one warm-up round.",
        "",
        "### Latency and throughput",
        "",
    ]
    body += markdown_table(["batch", "decoding", "rounds", "s per call", "steps run", "ms per step",
                            "ms per utterance", "utterances / s"], rows)
    body += ["", "### Cost of structured decoding (structured / plain)", "",
             "Per-round ratios of the same call with and without the constraint, both running the same number of "
             "decoding steps (encoder once + the cached decoder steps), and per decoding step:", ""]
    body += markdown_table(["batch", "steps plain / structured", "ratio per call", "ratio per step", "goal (per call)"],
                           list(step_ratio_cells.values()))
    body += goals
    body += ["", "### Parse failures on the untrained model", ""]
    body += markdown_table(["batch", "decoding", "outputs `parse_universal_label` rejects", "first output"], parse_rows)
    body += ["", "Structured decoding yields only parseable labels by construction; `tests/test_label_grammar.py` "
             "checks this on untrained models (not timed)."]
    path = write_result("generation", "Generation of the universal label", body, started_at=started, machine=machine)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

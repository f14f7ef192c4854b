# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Training for missing modalities: accuracy with and without the acoustic modality at test time.

A synthetic task in which both the text and the acoustic frames carry the binary label:

- text: a real MOSI transcript as carrier, plus, in `text_cue_rate` of the samples, one sentiment word
  that always agrees with the label (`great`, `awful`, ...); the other samples carry no text cue;
- acoustic: frames with their first feature shifted by +`acoustic_shift` (positive) or -`acoustic_shift`
  (negative), agreeing with the label in `acoustic_reliability` of the samples (else flipped).

Three tiny UniMSE models (random initialisation, real T5 vocabulary, utterance-level fusion, a
single-token target `positive` / `negative`) are trained with the same seed, data order and steps:

- `text-only`: trained and tested without acoustic frames (the reference for a missing modality);
- `no masking`: trained with the frames, `modality_mask_prob = 0`;
- `masked`: trained with the frames, `modality_mask_prob = 0.5` (half of the samples, drawn per step,
  are encoded as missing with the `missing_modality` policy).

Accuracy is the argmax over the two label tokens of the first decoding step (greedy decoding restricted
to the label set) on held-out carriers. Goals (issue 14): masked with the modality removed within 0.05
of text-only; masked with it present within 0.05 of no masking; no masking loses measurably more when
the modality is removed.

Usage::

    python benchmarks/bench_missing_modality.py            # 3 seeds, writes benchmarks/results/missing_modality.md
    python benchmarks/bench_missing_modality.py --seeds 0  # one seed
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO_ROOT, goal_comment, machine_description, write_result  # noqa: E402

from unimse_hf import UniMSEConfig, UniMSEForConditionalGeneration, UniMSEProcessor  # noqa: E402

LABEL_WORDS = ("negative", "positive")
POSITIVE_CUES = ("great", "wonderful", "excellent")
NEGATIVE_CUES = ("terrible", "awful", "boring")
ACOUSTIC_DIM = 8
VISUAL_DIM = 6
TOLERANCE = 0.05


@dataclass(frozen=True)
class CueTask:
    """The synthetic two-cue task: how often the text carries a cue and how reliable the acoustic cue is."""

    text_cue_rate: float = 0.6
    acoustic_reliability: float = 0.98
    acoustic_shift: float = 1.5
    frames: tuple[int, int] = (8, 16)


@dataclass(frozen=True)
class TrainingSetup:
    """Steps, batch size and learning rate of every model of one comparison."""

    steps: int = 300
    batch_size: int = 32
    learning_rate: float = 1e-2
    test_samples: int = 1024


def tiny_config(**overrides) -> UniMSEConfig:
    """A 1+1-block UniMSE (d_model 32) with the full T5 vocabulary; contrastive terms off, the fusion as configured."""
    settings = dict(d_model=32, d_kv=8, d_ff=64, num_layers=1, num_decoder_layers=1, num_heads=4,
                    acoustic_dim=ACOUSTIC_DIM, visual_dim=VISUAL_DIM, modality_hidden=16, modality_out=16,
                    pmf_bottleneck=16, cl_enabled=False)
    return UniMSEConfig(**{**settings, **overrides})


def processor() -> UniMSEProcessor:
    """The real T5 tokenizer (`data/t5`) with a feature extractor for the tiny model's frame sizes."""
    return UniMSEProcessor.from_tokenizer_dir(REPO_ROOT / "data" / "t5", acoustic_dim=ACOUSTIC_DIM,
                                              visual_dim=VISUAL_DIM, acoustic_frame_rate=100.0,
                                              visual_frame_rate=30.0)


def carrier_sentences(min_words: int = 3, max_words: int = 10) -> list[str]:
    """Real MOSI transcripts (data/mosi/label.csv) of `min_words`..`max_words` words without any cue word."""
    cues = set(POSITIVE_CUES) | set(NEGATIVE_CUES)
    with open(REPO_ROOT / "data" / "mosi" / "label.csv", newline="", encoding="utf-8") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)]
    return [t for t in texts if min_words <= len(t.split()) <= max_words and not cues & set(t.split())]


def cue_samples(rng: np.random.Generator, carriers: list[str], count: int, task: CueTask
                ) -> list[tuple[str, np.ndarray, int]]:
    """`count` samples (text, acoustic frames, label 0/1) of the two-cue task, classes balanced at random."""
    samples = []
    for _ in range(count):
        label = int(rng.integers(2))
        words = carriers[int(rng.integers(len(carriers)))].split()
        if rng.random() < task.text_cue_rate:
            cue = rng.choice(POSITIVE_CUES if label else NEGATIVE_CUES)
            words.insert(int(rng.integers(len(words) + 1)), str(cue))
        frames = rng.standard_normal((int(rng.integers(task.frames[0], task.frames[1] + 1)), ACOUSTIC_DIM))
        agrees = rng.random() < task.acoustic_reliability
        frames[:, 0] += task.acoustic_shift * (1 if label else -1) * (1 if agrees else -1)
        samples.append((" ".join(words), frames.astype(np.float32), label))
    return samples


def model_batches(proc: UniMSEProcessor, samples: list[tuple[str, np.ndarray, int]], batch_size: int,
                  with_acoustic: bool) -> list[tuple[dict[str, torch.Tensor], torch.Tensor]]:
    """Processor batches (with or without the acoustic frames), each with its single-token `labels`, and the
    0/1 labels."""
    label_ids = [proc.tokenizer.convert_tokens_to_ids("\u2581" + word) for word in LABEL_WORDS]
    batches = []
    for start in range(0, len(samples), batch_size):
        chunk = samples[start : start + batch_size]
        inputs = dict(proc([text for text, _, _ in chunk],
                           acoustic=[frames for _, frames, _ in chunk] if with_acoustic else None))
        labels = torch.tensor([label for _, _, label in chunk])
        inputs["labels"] = torch.tensor(label_ids)[labels].unsqueeze(1)
        batches.append((inputs, labels))
    return batches


def train(config: UniMSEConfig, batches: list[tuple[dict[str, torch.Tensor], torch.Tensor]], setup: TrainingSetup,
          seed: int) -> UniMSEForConditionalGeneration:
    """Train a fresh model (seeded initialisation) with Adam over `batches` in order for `setup.steps` steps."""
    torch.manual_seed(seed)
    model = UniMSEForConditionalGeneration(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=setup.learning_rate)
    model.train()
    for step in range(setup.steps):
        inputs, _ = batches[step % len(batches)]
        loss = model(**inputs).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@torch.no_grad()
def label_accuracy(model: UniMSEForConditionalGeneration, batches: list[tuple[dict[str, torch.Tensor], torch.Tensor]],
                   label_ids: list[int]) -> float:
    """Accuracy of the first decoding step's argmax over the label tokens (in eval mode)."""
    model.eval()
    correct = total = 0
    for inputs, labels in batches:
        inputs = {key: value for key, value in inputs.items() if key != "labels"}
        start = torch.full((labels.shape[0], 1), model.config.decoder_start_token_id, dtype=torch.long)
        logits = model(**inputs, decoder_input_ids=start).logits[:, 0, label_ids]
        correct += int((logits.argmax(dim=-1) == labels).sum())
        total += labels.shape[0]
    return correct / total


@dataclass
class SeedResult:
    """Accuracies of one seed's three models."""

    text_only: float
    unmasked_present: float
    unmasked_removed: float
    masked_present: float
    masked_removed: float
    seconds: float


def compare(seed: int, task: CueTask = CueTask(), setup: TrainingSetup = TrainingSetup(),
            mask_prob: float = 0.5, proc: Optional[UniMSEProcessor] = None) -> SeedResult:
    """Train the text-only, unmasked and masked models of one seed on the same data; test them on held-out carriers."""
    started = time.perf_counter()
    proc = proc or processor()
    rng = np.random.default_rng(seed)
    carriers = carrier_sentences()
    rng.shuffle(carriers)
    split = len(carriers) * 4 // 5
    train_samples = cue_samples(rng, carriers[:split], setup.steps * setup.batch_size // 2, task)
    test_samples = cue_samples(rng, carriers[split:], setup.test_samples, task)
    label_ids = [proc.tokenizer.convert_tokens_to_ids("\u2581" + word) for word in LABEL_WORDS]
    train_with = model_batches(proc, train_samples, setup.batch_size, with_acoustic=True)
    train_without = model_batches(proc, train_samples, setup.batch_size, with_acoustic=False)
    test_with = model_batches(proc, test_samples, 128, with_acoustic=True)
    test_without = model_batches(proc, test_samples, 128, with_acoustic=False)

    text_only = train(tiny_config(), train_without, setup, seed)
    unmasked = train(tiny_config(), train_with, setup, seed)
    masked = train(tiny_config(modality_mask_prob=mask_prob), train_with, setup, seed)
    return SeedResult(
        text_only=label_accuracy(text_only, test_without, label_ids),
        unmasked_present=label_accuracy(unmasked, test_with, label_ids),
        unmasked_removed=label_accuracy(unmasked, test_without, label_ids),
        masked_present=label_accuracy(masked, test_with, label_ids),
        masked_removed=label_accuracy(masked, test_without, label_ids),
        seconds=time.perf_counter() - started,
    )


def write_results(results: dict[int, SeedResult], task: CueTask, setup: TrainingSetup, mask_prob: float,
                  threads: int, started_at: float, machine: list[str]) -> Path:
    """Write `benchmarks/results/missing_modality.md` (per-seed table, means, goal verdicts)."""
    seeds = sorted(results)
    mean = {name: statistics.mean(getattr(results[s], name) for s in seeds)
            for name in ("text_only", "unmasked_present", "unmasked_removed", "masked_present", "masked_removed")}
    removed_gap = abs(mean["masked_removed"] - mean["text_only"])
    present_gap = abs(mean["masked_present"] - mean["unmasked_present"])
    unmasked_cost = mean["unmasked_present"] - mean["unmasked_removed"]
    masked_cost = mean["masked_present"] - mean["masked_removed"]
    body = [
        f"Synthetic two-cue task (see the script's docstring): real MOSI transcripts as carriers; a sentiment word "
        f"that always agrees with the label in {task.text_cue_rate:.0%} of the samples; acoustic frames "
        f"({task.frames[0]}-{task.frames[1]} frames x {ACOUSTIC_DIM}) whose first feature is shifted by "
        f"+/-{task.acoustic_shift} with the label in {task.acoustic_reliability:.0%} of the samples. A text-only model "
        f"can reach about {task.text_cue_rate + (1 - task.text_cue_rate) / 2:.2f}; both cues together about "
        f"{task.text_cue_rate + (1 - task.text_cue_rate) * task.acoustic_reliability:.2f}. Tiny UniMSE (1+1 blocks, "
        f"d_model 32, real T5 vocabulary, random initialisation, utterance-level fusion, `missing_modality='zeros'`, "
        f"InfoNCE off), single-token target `positive`/`negative`, Adam lr {setup.learning_rate}, "
        f"{setup.steps} steps of {setup.batch_size}; the three models of a seed share the initialisation seed and "
        f"the data order. Accuracy on {setup.test_samples} held-out samples (carriers not seen in training): argmax "
        f"over the two label tokens at the first decoding step. torch threads: {threads} per seed (seeds run in "
        f"parallel processes; the s column is each seed's wall time). \"removed\" = the batch "
        "has no `acoustic_features` (the model uses its missing-modality vector).",
        "",
        "| seed | text-only training | no masking, acoustic present | no masking, removed | "
        f"`modality_mask_prob={mask_prob}`, present | masked, removed | s |",
        "|---|---|---|---|---|---|---|",
    ]
    for seed in seeds:
        r = results[seed]
        body.append(f"| {seed} | {r.text_only:.3f} | {r.unmasked_present:.3f} | {r.unmasked_removed:.3f} | "
                    f"{r.masked_present:.3f} | {r.masked_removed:.3f} | {r.seconds:.0f} |")
    body.append(f"| mean | {mean['text_only']:.3f} | {mean['unmasked_present']:.3f} | "
                f"{mean['unmasked_removed']:.3f} | {mean['masked_present']:.3f} | {mean['masked_removed']:.3f} | |")

    def verdict(met: bool) -> str:
        return "met" if met else "**missed**"

    goals = [
        (f"masked, acoustic removed vs text-only training (abs. difference of the means, {len(seeds)} seeds)",
         f"{removed_gap:.3f}", f"<= {TOLERANCE}: {verdict(removed_gap <= TOLERANCE)}"),
        ("masked vs no masking, acoustic present (abs. difference of the means)", f"{present_gap:.3f}",
         f"<= {TOLERANCE}: {verdict(present_gap <= TOLERANCE)}"),
        ("accuracy lost by removing the acoustic modality: no masking vs masked",
         f"{unmasked_cost:.3f} vs {masked_cost:.3f}",
         f"no masking loses > {TOLERANCE} more: {verdict(unmasked_cost > masked_cost + TOLERANCE)}"),
    ]
    body += ["", *[goal_comment(*goal) for goal in goals], "", "| measurement | value | goal |", "|---|---|---|",
             *[f"| {m} | {v} | {g} |" for m, v, g in goals]]
    return write_result("missing_modality", "Training for missing modalities (`modality_mask_prob`)", body,
                        started_at=started_at, machine=machine)


def main() -> int:
    """Run the comparison for the given seeds and write the result section."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=TrainingSetup.steps)
    parser.add_argument("--mask_prob", type=float, default=0.5)
    parser.add_argument("--processes", type=int, default=None,
                        help="seeds run in this many processes at once, one torch thread each (default: one per seed)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    machine = machine_description()
    setup = TrainingSetup(steps=args.steps)
    results = {}
    with ProcessPoolExecutor(max_workers=args.processes or len(args.seeds), initializer=torch.set_num_threads, initargs=(1,)) as pool:
        futures = {seed: pool.submit(compare, seed, setup=setup, mask_prob=args.mask_prob) for seed in args.seeds}
        for seed, future in futures.items():
            results[seed] = future.result()
            print(f"seed {seed}: {results[seed]}", flush=True)
    path = write_results(results, CueTask(), setup, args.mask_prob, 1, started, machine)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Serving: PyTorch fp32 vs ONNX Runtime fp32 vs int8 (torch dynamic, ORT dynamic) greedy label generation.

For each size (t5-small, t5-base dimensions, random weights, the real T5 vocabulary) the checkpoint is
saved, exported with ``python -m unimse_hf.export_onnx --int8`` (in-process: ``export_onnx``), and four
candidates generate the label greedily under the label grammar, side by side in interleaved rounds:
``model.generate`` fp32, ``quantize_model(model, "int8")``, ``UniMSEOnnxPredictor`` fp32 and int8. Each
call gets the same fixed token budget (a random model never closes its label that early, so every
candidate runs the same steps; the steps run are reported). Batch 1 gives latency, batch 32 throughput.

Label agreement of int8 vs fp32 is measured on real MOSI and MELD test transcripts with a trained
checkpoint (``make demo`` -> demo_output/model), full label budget, batch 32.

Where the throughput goal is missed, the encoder/decoder split of each candidate and torch.profiler's top
operators are written as the profile.

Usage::

    python benchmarks/bench_serving.py [--sizes t5-small,t5-base] [--rounds 3] [--max-new-tokens 8]
        [--demo-model demo_output/model] [--agreement-samples 250] [--result-name serving]

`--sizes ""` measures only the label agreement.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from bench_fusion_overhead import T5_DIMENSIONS, VOCAB_SIZE  # noqa: E402
from bench_generation import generation_inputs  # noqa: E402
from common import (  # noqa: E402
    REPO_ROOT, goal_comment, interleaved_timings, machine_description, markdown_table, ratio_of, set_thread_count,
    write_result,
)
from unimse_hf import UniMSEConfig, UniMSEForConditionalGeneration, UniMSEProcessor  # noqa: E402
from unimse_hf.export_onnx import export_onnx  # noqa: E402
from unimse_hf.onnx_predictor import UniMSEOnnxPredictor  # noqa: E402
from unimse_hf.quantization import quantize_model  # noqa: E402

THROUGHPUT_GOAL = 1.8
AGREEMENT_GOAL = 0.98
CANDIDATES = ("torch fp32", "torch int8", "ORT fp32", "ORT int8")


def session_options(threads: int):
    """ONNX Runtime options with the same intra-op thread count as torch, sequential execution."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return options


class Backends:
    """The four candidates of one checkpoint, each as `generate(inputs, max_new_tokens) -> sequences`."""

    def __init__(self, model: UniMSEForConditionalGeneration, processor: UniMSEProcessor, export_dir: Path, threads: int):
        self.models = {"torch fp32": model.eval(), "torch int8": quantize_model(model, "int8")}
        self.processor = processor
        self.predictors = {
            "ORT fp32": UniMSEOnnxPredictor.from_pretrained(export_dir, session_options=session_options(threads)),
            "ORT int8": UniMSEOnnxPredictor.from_pretrained(export_dir, quantize="int8",
                                                            session_options=session_options(threads)),
        }

    def generate(self, name: str, inputs: dict, max_new_tokens: Optional[int]) -> torch.Tensor:
        """Greedy structured generation with candidate `name` (`processor.generation_kwargs`; None = full label budget)."""
        if name in self.models:
            with torch.no_grad():
                return self.models[name].generate(**inputs, **self.processor.generation_kwargs(max_new_tokens=max_new_tokens),
                                                  do_sample=False, num_beams=1)
        return self.predictors[name].generate(inputs, max_new_tokens=max_new_tokens).sequences

    def encode(self, name: str, inputs: dict) -> None:
        """The encoder alone (LSTMs + fused T5 encoder) of candidate `name`."""
        if name in self.models:
            with torch.no_grad():
                self.models[name].encode(**inputs)
        else:
            self.predictors[name].encode(inputs)


def export_checkpoint(model: UniMSEForConditionalGeneration, processor: UniMSEProcessor, scratch: Path) -> tuple[Path, float]:
    """Save `model` with `processor` and export it with int8 graphs; return the export folder and its seconds."""
    checkpoint = scratch / "checkpoint"
    model.save_pretrained(checkpoint)
    processor.save_pretrained(checkpoint)
    started = time.perf_counter()
    export_dir = export_onnx(checkpoint, scratch / "onnx", int8=True)
    return export_dir, time.perf_counter() - started


def timed(function: Callable[[], object], outputs: list) -> Callable[[], None]:
    def run() -> None:
        outputs.append(function())
    return run


def profile_lines(backends: Backends, inputs: dict, max_new_tokens: int) -> list[str]:
    """Encoder share of each candidate's call and torch.profiler's top operators of the torch candidates."""
    split = interleaved_timings(
        {**{f"{name} call": (lambda n=name: backends.generate(n, inputs, max_new_tokens)) for name in CANDIDATES},
         **{f"{name} encoder": (lambda n=name: backends.encode(n, inputs)) for name in CANDIDATES}},
        rounds=1, warmup_rounds=0)
    rows = []
    for name in CANDIDATES:
        call, encoder = split[f"{name} call"].cpu.median, split[f"{name} encoder"].cpu.median
        rows.append([name, f"{call:.3f}", f"{encoder:.3f}", f"{max(call - encoder, 0.0):.3f}",
                     f"{100 * encoder / call:.0f}%"])
    lines = ["Encoder vs decoder (CPU s, one call each at batch 32):", ""]
    lines += markdown_table(["candidate", "call", "encoder", "decoder steps + grammar", "encoder share"], rows)
    from torch.profiler import ProfilerActivity, profile

    for name in ("torch fp32", "torch int8"):
        with profile(activities=[ProfilerActivity.CPU]) as profiler:
            backends.generate(name, inputs, max_new_tokens)
        events = sorted(profiler.key_averages(), key=lambda event: event.self_cpu_time_total, reverse=True)[:6]
        total = sum(event.self_cpu_time_total for event in profiler.key_averages())
        lines += ["", f"torch.profiler, {name}, one batch-32 call: top operators by self CPU time", ""]
        lines += markdown_table(["operator", "self CPU ms", "share"],
                                [[f"`{event.key}`", f"{event.self_cpu_time_total / 1e3:.1f}",
                                  f"{100 * event.self_cpu_time_total / total:.0f}%"] for event in events])
    return lines


def benchmark_size(size: str, processor: UniMSEProcessor, args, threads: int) -> tuple[list[str], list[str], list[list[str]]]:
    """Time the four candidates at one size; return (body lines, goal comments, summary rows)."""
    torch.manual_seed(0)
    config = UniMSEConfig(**T5_DIMENSIONS[size], vocab_size=VOCAB_SIZE, acoustic_dim=64, visual_dim=64)
    model = UniMSEForConditionalGeneration(config).eval()
    scratch = Path(tempfile.mkdtemp(prefix=f"unimse-serving-{size}-"))
    try:
        export_dir, export_seconds = export_checkpoint(model, processor, scratch)
        print(f"{size}: exported in {export_seconds:.0f} s", flush=True)
        backends = Backends(model, processor, export_dir, threads)
        rows, goals, summary, profile = [], [], [], []
        for batch_size in (1, 32):
            inputs = generation_inputs(processor, batch_size, seed=batch_size)
            produced = {name: [] for name in CANDIDATES}
            candidates = {name: timed(lambda n=name: backends.generate(n, inputs, args.max_new_tokens), produced[name])
                          for name in CANDIDATES}
            rounds = args.rounds if batch_size == 32 else 2 * args.rounds
            timings = interleaved_timings(candidates, rounds=rounds, warmup_rounds=1, collect_garbage=False)
            for name in CANDIDATES:
                ratio = ratio_of(timings, "torch fp32", name)
                steps = produced[name][-1].shape[1] - 1
                rows.append([size, batch_size, name, timings[name].cpu.describe(), timings[name].wall.describe(),
                             steps, f"{batch_size / timings[name].cpu.median:.1f}",
                             "1 (reference)" if name == "torch fp32" else ratio.describe(2)])
                if batch_size == 32 and name != "torch fp32":
                    verdict = ("met" if ratio.median >= THROUGHPUT_GOAL else "**missed**") if "int8" in name else "not a goal"
                    summary.append([size, name, ratio.describe(2), f">= {THROUGHPUT_GOAL}: {verdict}"])
                    if "int8" in name:
                        goals.append(goal_comment(f"{name} / torch fp32 throughput, batch 32, {size}", ratio.describe(2),
                                                  f">= {THROUGHPUT_GOAL}: {verdict}"))
            print(f"{size} batch {batch_size}: " + ", ".join(f"{name} {timings[name].cpu.median:.3f} s" for name in CANDIDATES),
                  flush=True)
            if batch_size == 32 and any("missed" in row[-1] for row in summary if "int8" in row[1]):
                profile = [f"#### Profile, {size}, batch 32 (a throughput goal is missed)", "",
                           *profile_lines(backends, inputs, args.max_new_tokens), ""]
        body = [f"### {size} (export with int8 graphs: {export_seconds:.0f} s)", ""]
        body += markdown_table(["size", "batch", "candidate", "CPU s per call", "wall s per call", "steps run",
                                "utterances / CPU s", "speed-up vs torch fp32 (per-round CPU ratio)"], rows)
        body += ["", *profile]
        return body, goals, summary
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def agreement_texts(samples: int) -> list[tuple[str, str]]:
    """(corpus, transcript) pairs: the first `samples` test utterances of MOSI and of MELD."""
    from unimse_hf.data import load_corpus

    texts = []
    for corpus, path in (("mosi", REPO_ROOT / "data" / "mosi" / "label.csv"), ("meld", REPO_ROOT / "data" / "meld")):
        test = load_corpus(corpus, str(path))["test"]
        texts += [(corpus, text) for text in test.select(range(min(samples, len(test))))["text"]]
    return texts


def label_agreement(model_dir: Path, samples: int, threads: int) -> tuple[list[str], list[str]]:
    """int8 and ORT labels vs torch fp32 on real transcripts with the trained checkpoint in `model_dir`."""
    if not (model_dir / "config.json").is_file():
        return ([f"Not measured: no trained checkpoint at `{model_dir}` (run `make demo` first)."],
                [goal_comment("int8 label agreement with fp32", "not measured", f">= {AGREEMENT_GOAL:.0%}: **missed**")])
    model = UniMSEForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32).eval()
    processor = UniMSEProcessor.from_pretrained(model_dir)
    budget = processor.generation_kwargs()["max_new_tokens"]
    scratch = Path(tempfile.mkdtemp(prefix="unimse-serving-agreement-"))
    try:
        export_dir = export_onnx(model_dir, scratch / "onnx", int8=True)
        backends = Backends(model, processor, export_dir, threads)
        pairs = agreement_texts(samples)
        labels = {name: [] for name in CANDIDATES}
        for start in range(0, len(pairs), 32):
            inputs = dict(processor([text for _, text in pairs[start:start + 32]], return_tensors="pt"))
            for name in CANDIDATES:
                sequences = backends.generate(name, inputs, None)
                labels[name] += processor.post_process_generation(sequences)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    reference = labels["torch fp32"]
    constant = len({label.text for label in reference}) < 2
    rows, goals = [], []
    corpora = sorted({corpus for corpus, _ in pairs})
    for name in CANDIDATES[1:]:
        cells = [name]
        for subset in (*corpora, "all"):
            indices = [i for i, (corpus, _) in enumerate(pairs) if subset in ("all", corpus)]
            same = sum(labels[name][i].text == reference[i].text for i in indices)
            cells.append(f"{same} / {len(indices)} ({same / len(indices):.1%})")
        polarity = statistics.mean(labels[name][i].polarity == reference[i].polarity for i in range(len(pairs)))
        emotion = statistics.mean(labels[name][i].meld_emotion == reference[i].meld_emotion for i in range(len(pairs)))
        cells += [f"{polarity:.1%}", f"{emotion:.1%}"]
        rows.append(cells)
        if "int8" in name:
            share = sum(labels[name][i].text == reference[i].text for i in range(len(pairs))) / len(pairs)
            verdict = ("**not shown** (fp32 gives one label for every transcript)" if constant
                       else "met" if share >= AGREEMENT_GOAL else "**missed**")
            goals.append(goal_comment(f"{name} label agreement with torch fp32 ({model_dir.name}, MOSI+MELD test)",
                                      f"{share:.1%}", f">= {AGREEMENT_GOAL:.0%}: {verdict}"))
    config = model.config
    lines = [f"Checkpoint `{model_dir}` (d_model {config.d_model}, {config.num_layers}+{config.num_decoder_layers} blocks, "
             f"text-only), the first {samples} test transcripts of each corpus, batch 32, grammar on, "
             f"`max_new_tokens={budget}`. A label agrees when the whole generated string equals "
             "torch fp32's.", ""]
    lines += markdown_table(["candidate", *[f"same label, {corpus}" for corpus in corpora], "same label, all",
                             "same polarity", "same MELD emotion"], rows)
    distinct = {label.text for label in reference}
    polarities = {label.polarity for label in reference}
    emotions = {label.meld_emotion for label in reference}
    lines += ["", f"How varied the fp32 labels are (agreement on a constant output would say little): {len(distinct)} "
              f"distinct labels over {len(reference)} transcripts, {len(polarities)} polarities, {len(emotions)} MELD "
              f"emotions; {sum(label.valid for label in reference)} / {len(reference)} parse."]
    return lines, goals


def main() -> int:
    """Run the size benchmarks and the agreement measurement; write benchmarks/results/serving.md."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="t5-small,t5-base")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds at batch 32 (twice as many at batch 1)")
    parser.add_argument("--max-new-tokens", type=int, default=8, help="token budget of every timed call")
    parser.add_argument("--threads", type=int, default=1, help="torch and ONNX Runtime intra-op threads")
    parser.add_argument("--demo-model", default=str(REPO_ROOT / "demo_output" / "model"))
    parser.add_argument("--agreement-samples", type=int, default=250, help="test transcripts per corpus")
    parser.add_argument("--result-name", default="serving", help="write benchmarks/results/<name>.md")
    args = parser.parse_args()
    sizes = [size.strip() for size in args.sizes.split(",") if size.strip()]
    unknown = [size for size in sizes if size not in T5_DIMENSIONS]
    if unknown:
        raise SystemExit(f"--sizes: unknown {unknown}; choose from {sorted(T5_DIMENSIONS)}")
    started = time.perf_counter()
    threads = set_thread_count(args.threads)
    machine = machine_description()
    import onnxruntime

    machine.append(f"- onnxruntime {onnxruntime.__version__}, intra-op threads = {threads} (as torch)")
    processor = UniMSEProcessor.from_tokenizer_dir(REPO_ROOT / "data" / "t5", acoustic_dim=64, visual_dim=64)

    sections, goals, summary = [], [], []
    for size in sizes:
        body, size_goals, size_summary = benchmark_size(size, processor, args, threads)
        sections += body
        goals += size_goals
        summary += size_summary
    agreement, agreement_goals = label_agreement(Path(args.demo_model), args.agreement_samples, threads)
    goals += agreement_goals

    body = [
        "Greedy generation of the universal label as `processor.generation_kwargs()` decodes (label grammar on), "
        "KV cache on in every candidate: `model.generate` (torch fp32), `quantize_model(model, 'int8')` (torch dynamic "
        "int8 of every `nn.Linear`), and `UniMSEOnnxPredictor` on the graphs of `python -m unimse_hf.export_onnx "
        "--int8` (ORT fp32; ORT int8 = `onnxruntime.quantization.quantize_dynamic` of the weight MatMul/Gemm nodes except the LM head, which stays fp32). "
        f"Random weights at t5-small / t5-base dimensions, vocabulary {VOCAB_SIZE}; inputs: ~20-token transcripts "
        f"with 50x64 acoustic and 30x64 visual frames; every call gets `max_new_tokens={args.max_new_tokens}`. "
        "Times: median [IQR] over interleaved rounds (one warm-up round), CPU seconds of the process and wall "
        "seconds; speed-ups are medians [IQR] of per-round CPU-time ratios.",
        "",
        "### Throughput goal at batch 32",
        "",
    ]
    body += markdown_table(["size", "candidate", "speed-up vs torch fp32", "goal"], summary)
    body += ["", *sections, "### Label agreement with fp32 (trained demo checkpoint, real transcripts)", "", *agreement, "",
             *goals]
    title = ("Serving: ONNX Runtime and int8 CPU inference" if sizes
             else "Serving: int8 and ONNX Runtime label agreement with fp32 (trained checkpoint)")
    path = write_result(args.result_name, title, body, started_at=started, machine=machine)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

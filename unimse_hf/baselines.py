# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Reference baselines for UniMSE results, trained on the same training rows and scored with `unimse_hf.metrics`.

Two baselines per dataset:

* **trivial**: the mean training score (MOSI, MOSEI) or the majority training emotion (MELD, IEMOCAP), predicted
  for every test row. A model that does not beat it has learnt nothing from the input.
* **TF-IDF + linear**: word uni- and bi-gram TF-IDF features of the utterance transcript (`text`) with ridge
  regression on the score (MSA) or multinomial logistic regression on the emotion (ERC), one model per dataset,
  fitted on that dataset's training rows in seconds. It is the lexical level a text model should reach.

`baseline_metrics` returns, per dataset and baseline, the same metric names as `unimse_hf.metrics.msa_metrics` /
`erc_metrics`, so they line up with a model's `test_<dataset>_<metric>` results.

This module is not uploaded with checkpoints (it needs scikit-learn).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .metrics import erc_metrics, msa_metrics

MSA_DATASETS = ("mosi", "mosei")
ERC_DATASETS = ("meld", "iemocap")
TRIVIAL = "trivial"
TFIDF = "tfidf_linear"
BASELINE_NAMES = (TRIVIAL, TFIDF)
"""The keys of each dataset's entry in `baseline_metrics`."""


@dataclass
class BaselineResult:
    """One baseline on one dataset's test rows: a short description, its predictions and their metrics."""

    description: str
    predictions: list[Any]
    metrics: dict[str, float]


def _gold_column(rows: Sequence[Mapping[str, Any]], dataset: str, split: str) -> list[Any]:
    column = "score" if dataset in MSA_DATASETS else f"{dataset}_emotion"
    values = [row.get(column) for row in rows]
    missing = [str(row.get("id", i)) for i, (row, value) in enumerate(zip(rows, values)) if value is None]
    if missing:
        raise ValueError(f"{dataset} {split} rows {missing[:5]} have no `{column}`; baselines need the gold label")
    return values


def _texts(rows: Sequence[Mapping[str, Any]], dataset: str, split: str) -> list[str]:
    texts = [row.get("text") for row in rows]
    empty = [str(row.get("id", i)) for i, (row, text) in enumerate(zip(rows, texts))
             if not isinstance(text, str) or not text.strip()]
    if empty:
        raise ValueError(f"{dataset} {split} rows {empty[:5]} have no `text`; the TF-IDF baseline needs transcripts")
    return texts


def trivial_baseline(train_rows: Sequence[Mapping[str, Any]], test_rows: Sequence[Mapping[str, Any]],
                     dataset: str) -> BaselineResult:
    """The mean training score (MSA) or majority training emotion (ERC) predicted for every test row."""
    train_gold = _gold_column(train_rows, dataset, "train")
    test_gold = _gold_column(test_rows, dataset, "test")
    if dataset in MSA_DATASETS:
        mean = float(np.mean(train_gold))
        return BaselineResult(f"mean training score {mean:+.3f}", [mean] * len(test_rows),
                              msa_metrics([mean] * len(test_rows), test_gold))
    majority = Counter(train_gold).most_common(1)[0][0]
    return BaselineResult(f"majority training class '{majority}'", [majority] * len(test_rows),
                          erc_metrics([majority] * len(test_rows), test_gold))


def tfidf_linear_baseline(train_rows: Sequence[Mapping[str, Any]], test_rows: Sequence[Mapping[str, Any]],
                          dataset: str, seed: int = 0) -> BaselineResult:
    """TF-IDF (uni+bi-grams, sublinear tf) + ridge regression (MSA) or logistic regression (ERC)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline

    train_texts, test_texts = _texts(train_rows, dataset, "train"), _texts(test_rows, dataset, "test")
    train_gold = _gold_column(train_rows, dataset, "train")
    test_gold = _gold_column(test_rows, dataset, "test")
    features = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    if dataset in MSA_DATASETS:
        model = make_pipeline(features, Ridge(alpha=1.0))
        model.fit(train_texts, np.asarray(train_gold, dtype=float))
        predicted = np.clip(model.predict(test_texts), -3.0, 3.0).tolist()
        return BaselineResult("TF-IDF uni+bi-grams + ridge regression", predicted, msa_metrics(predicted, test_gold))
    model = make_pipeline(features, LogisticRegression(max_iter=2000, random_state=seed))
    model.fit(train_texts, train_gold)
    predicted = [str(label) for label in model.predict(test_texts)]
    return BaselineResult("TF-IDF uni+bi-grams + logistic regression", predicted, erc_metrics(predicted, test_gold))


def baseline_metrics(corpora: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]],
                     seed: int = 0) -> dict[str, dict[str, BaselineResult]]:
    """Both baselines for every corpus: `{dataset: {"trivial": result, "tfidf_linear": result}}`.

    Args:
        corpora: `{dataset: {"train": rows, "test": rows, ...}}`, rows in the unimse-hf row schema (a
            `datasets.Dataset` or a list of dicts); dataset names are `mosi`, `mosei`, `meld` or `iemocap`.
        seed: random state of the logistic regression.

    Raises:
        ValueError: for an unknown dataset name, a missing `train`/`test` split, or rows without their gold label
            or transcript.
    """
    results: dict[str, dict[str, BaselineResult]] = {}
    for dataset, splits in corpora.items():
        if dataset not in MSA_DATASETS + ERC_DATASETS:
            raise ValueError(f"`corpora` key {dataset!r} is not one of {MSA_DATASETS + ERC_DATASETS}")
        missing = [split for split in ("train", "test") if split not in splits]
        if missing:
            raise ValueError(f"`corpora[{dataset!r}]` has no {' or '.join(missing)} split")
        train = _rows(splits["train"])
        test = _rows(splits["test"])
        results[dataset] = {TRIVIAL: trivial_baseline(train, test, dataset),
                            TFIDF: tfidf_linear_baseline(train, test, dataset, seed=seed)}
    return results


def _rows(split: Any) -> list[Mapping[str, Any]]:
    if hasattr(split, "to_list"):
        return split.to_list()
    return list(split)


__all__ = ["BaselineResult", "baseline_metrics", "trivial_baseline", "tfidf_linear_baseline", "BASELINE_NAMES",
           "TRIVIAL", "TFIDF"]

# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Reference baselines for UniMSE results, trained on the same training rows and scored with `unimse_hf.metrics`.

Two baselines per dataset:

* **trivial**: the mean training score (MOSI, MOSEI) or the majority training emotion (MELD, IEMOCAP), predicted
  for every test row. A model that does not beat it has learnt nothing from the input.
* **TF-IDF + linear**: word uni- and bi-gram TF-IDF features of the utterance transcript (`text`) with ridge
  regression on the score, one model fitted on the training rows of all MSA corpora together (MOSI gains from
  MOSEI's rows, as UniMSE does), and multinomial logistic regression on the emotion per ERC corpus, its `C` chosen
  on the validation split. Fitted in seconds; it is the lexical level a text model should reach.

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
LOGISTIC_C = (1.0, 3.0, 10.0)
"""Candidate inverse regularisation strengths of the ERC logistic regression (chosen on validation)."""


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


def _tfidf() -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)


def tfidf_ridge_baselines(corpora: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]]) -> dict[str, BaselineResult]:
    """One TF-IDF (uni+bi-grams, sublinear tf) + ridge regression fitted on the training rows of every MSA corpus in
    `corpora` together (as UniMSE trains one model on all of them), scored on each corpus's test rows."""
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline

    names = [name for name in corpora if name in MSA_DATASETS]
    texts = [text for name in names for text in _texts(corpora[name]["train"], name, "train")]
    scores = [score for name in names for score in _gold_column(corpora[name]["train"], name, "train")]
    model = make_pipeline(_tfidf(), Ridge(alpha=1.0)).fit(texts, np.asarray(scores, dtype=float))
    results = {}
    for name in names:
        test = corpora[name]["test"]
        predicted = np.clip(model.predict(_texts(test, name, "test")), -3.0, 3.0).tolist()
        results[name] = BaselineResult(f"TF-IDF uni+bi-grams + ridge regression on the {'+'.join(names)} training rows",
                                       predicted, msa_metrics(predicted, _gold_column(test, name, "test")))
    return results


def tfidf_logistic_baseline(splits: Mapping[str, Sequence[Mapping[str, Any]]], dataset: str,
                            seed: int = 0) -> BaselineResult:
    """TF-IDF + multinomial logistic regression on one ERC corpus; the inverse regularisation `C` is chosen from
    `LOGISTIC_C` by weighted F1 on the `validation` split when there is one (1.0 otherwise), never on test."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    def fit(c: float) -> Any:
        model = make_pipeline(_tfidf(), LogisticRegression(C=c, max_iter=2000, random_state=seed))
        return model.fit(_texts(splits["train"], dataset, "train"), _gold_column(splits["train"], dataset, "train"))

    def predict(model: Any, split: str) -> list[str]:
        return [str(label) for label in model.predict(_texts(splits[split], dataset, split))]

    best_c, model = 1.0, None
    if "validation" in splits:
        gold = _gold_column(splits["validation"], dataset, "validation")
        scored = [(erc_metrics(predict(candidate, "validation"), gold)["weighted_f1"], c, candidate)
                  for c in LOGISTIC_C for candidate in [fit(c)]]
        _, best_c, model = max(scored, key=lambda item: item[0])
    model = model or fit(best_c)
    predicted = predict(model, "test")
    return BaselineResult(f"TF-IDF uni+bi-grams + logistic regression (C={best_c:g})", predicted,
                          erc_metrics(predicted, _gold_column(splits["test"], dataset, "test")))


def baseline_metrics(corpora: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]],
                     seed: int = 0) -> dict[str, dict[str, BaselineResult]]:
    """Both baselines for every corpus: `{dataset: {"trivial": result, "tfidf_linear": result}}`.

    Args:
        corpora: `{dataset: {"train": rows, "test": rows, "validation": rows (optional)}}`, rows in the unimse-hf
            row schema (a `datasets.Dataset` or a list of dicts); dataset names are `mosi`, `mosei`, `meld` or
            `iemocap`.
        seed: random state of the logistic regression.

    Raises:
        ValueError: for an unknown dataset name, a missing `train`/`test` split, or rows without their gold label
            or transcript.
    """
    rows: dict[str, dict[str, list[Mapping[str, Any]]]] = {}
    for dataset, splits in corpora.items():
        if dataset not in MSA_DATASETS + ERC_DATASETS:
            raise ValueError(f"`corpora` key {dataset!r} is not one of {MSA_DATASETS + ERC_DATASETS}")
        missing = [split for split in ("train", "test") if split not in splits]
        if missing:
            raise ValueError(f"`corpora[{dataset!r}]` has no {' or '.join(missing)} split")
        rows[dataset] = {split: _rows(value) for split, value in splits.items()}
    ridge = tfidf_ridge_baselines(rows) if any(name in MSA_DATASETS for name in rows) else {}
    return {dataset: {TRIVIAL: trivial_baseline(splits["train"], splits["test"], dataset),
                      TFIDF: ridge[dataset] if dataset in MSA_DATASETS else tfidf_logistic_baseline(splits, dataset, seed)}
            for dataset, splits in rows.items()}


def _rows(split: Any) -> list[Mapping[str, Any]]:
    if hasattr(split, "to_list"):
        return split.to_list()
    return list(split)


__all__ = ["BaselineResult", "baseline_metrics", "trivial_baseline", "tfidf_ridge_baselines", "tfidf_logistic_baseline",
           "BASELINE_NAMES", "TRIVIAL", "TFIDF", "LOGISTIC_C"]

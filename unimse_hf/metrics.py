# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Evaluation metrics for UniMSE, as the official evaluation defines them, made robust (B11, B12 in docs/official-differences.md).

* MSA (MOSI, MOSEI) on the score slot: MAE, Pearson correlation, Acc-7, Acc-5, and Acc-2 / weighted F1 in
  the ``non0`` (gold != 0, positive vs negative) and ``has0`` (all samples, non-negative vs negative) variants.
* ERC (MELD, IEMOCAP) on the dataset's emotion slot: accuracy and support-weighted F1.
* The parse-failure rate: the fraction of generated texts that are not a complete universal label.

Unreadable output never earns credit: by default (``parse_failures="wrong"``, used for model selection and
the model card) an unreadable score is scored as the score in [-3, 3] farthest from the gold one, so it is a
wrong class for every accuracy and F1 and has the largest possible error for MAE; an unreadable emotion is
the class :data:`INVALID_PREDICTION`. ``parse_failures="official"`` reproduces the official evaluation,
which scores an unreadable score as 0.0 (a model that never emits a readable label then gets Acc-2 has0 of
the share of non-negative gold scores); use it only to compare with numbers computed the official way.

All rates are fractions in [0, 1], not percentages. :func:`compute_unimse_metrics` evaluates a mixed set of
generated texts and returns one flat dict with per-dataset prefixes plus :data:`AGGREGATE_METRIC`, the
value to use as ``metric_for_best_model``. This module is not uploaded with checkpoints.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Sequence, Sized
from pathlib import Path
from typing import Literal, Optional, Union

import numpy as np
from huggingface_hub import CommitInfo, HfApi
from sklearn.metrics import f1_score

from .labels import IEMOCAP_ABBREVIATIONS, IEMOCAP_EMOTIONS, MELD_EMOTIONS, parse_universal_label, slot_for_dataset

MSA_DATASETS: tuple[str, ...] = ("mosi", "mosei")
"""Datasets evaluated with :func:`msa_metrics` on the score slot."""

ERC_DATASETS: tuple[str, ...] = ("meld", "iemocap")
"""Datasets evaluated with :func:`erc_metrics` on their own emotion slot."""

PRIMARY_METRICS: dict[str, str] = {"mosi": "acc2_non0", "mosei": "acc2_non0", "meld": "weighted_f1", "iemocap": "weighted_f1"}
"""The headline metric of each dataset (the paper's MSA Acc-2 is the non0 variant); all are higher-is-better."""

AGGREGATE_METRIC = "mean_primary"
"""Key of the aggregate in :func:`compute_unimse_metrics`: the mean of the present datasets' primary metrics."""

INVALID_PREDICTION = "<invalid>"
"""The class an unreadable ERC prediction is given; it never equals a gold class, so it counts as wrong."""

PARSE_FAILURE_SCORINGS: tuple[str, ...] = ("wrong", "official")
"""How :func:`msa_generation_metrics` scores an unreadable score: ``"wrong"`` (the default, see
:func:`worst_case_score`) or ``"official"`` (0.0, as the official evaluation does)."""

ParseFailureScoring = Literal["wrong", "official"]

MSA_SCORE_RANGE = 3.0
"""MOSI and MOSEI gold scores lie in [-3, 3]."""

_EMOTIONS: dict[str, tuple[str, ...]] = {"meld": MELD_EMOTIONS, "iemocap": IEMOCAP_EMOTIONS}


def worst_case_score(gold: float) -> float:
    """The score in [-3, 3] farthest from `gold`: -3 for a non-negative gold score, +3 for a negative one.

    Scoring an unreadable prediction with it makes that sample wrong for Acc-2 (non0 and has0), Acc-5, Acc-7
    and both F1 variants, and gives it the largest error any prediction in range could have (3 + |gold|).
    """
    return -MSA_SCORE_RANGE if gold >= 0 else MSA_SCORE_RANGE


def _check_parse_failure_scoring(parse_failures: str) -> None:
    if parse_failures not in PARSE_FAILURE_SCORINGS:
        raise ValueError(f"`parse_failures` must be one of {PARSE_FAILURE_SCORINGS}, got {parse_failures!r}")


def _as_finite_array(values: Sequence[float], name: str) -> np.ndarray:
    """Return `values` as a 1-D float64 array; raise ``ValueError`` naming `name` if it is empty or not finite."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must contain only numbers") from None
    if array.ndim != 1:
        raise ValueError(f"`{name}` must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"`{name}` must not be empty")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"`{name}` must contain only finite numbers")
    return array


def _check_same_length(predictions: Sized, references: Sized) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"`predictions` has {len(predictions)} items but `references` has {len(references)}")


def pearson_correlation(predictions: Sequence[float], references: Sequence[float]) -> float:
    """Pearson's r of two score sequences (``np.corrcoef``), NaN when either is constant (r is undefined)."""
    p = _as_finite_array(predictions, "predictions")
    y = _as_finite_array(references, "references")
    _check_same_length(p, y)
    if np.ptp(p) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(np.corrcoef(p, y)[0, 1])


def _binary_accuracy_and_f1(gold: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    """Accuracy and weighted F1 of two boolean arrays; NaN for both when they are empty."""
    if gold.size == 0:
        return math.nan, math.nan
    accuracy = float(np.mean(gold == predicted))
    # zero_division=0 gives the value the official default ("warn") gives, without the warning.
    weighted_f1 = float(f1_score(gold, predicted, average="weighted", zero_division=0))
    return accuracy, weighted_f1


def msa_metrics(predictions: Sequence[float], references: Sequence[float]) -> dict[str, float]:
    """MSA metrics of predicted scores against gold scores, as in the official ``eval_mosei_senti``.

    Returns ``mae`` (mean |p - y|, no clipping), ``corr`` (Pearson, NaN if p or y is constant), ``acc7`` and
    ``acc5`` (``np.round``, i.e. half-to-even, after clipping to ±3 resp. ±2), ``acc2_non0`` and
    ``weighted_f1_non0`` (samples with y != 0, classes y > 0 vs p > 0; NaN if every y is 0), ``acc2_has0``
    and ``weighted_f1_has0`` (all samples, classes y >= 0 vs p >= 0).

    Raises:
        ValueError: if an argument is empty, not finite, or the lengths differ.
    """
    p = _as_finite_array(predictions, "predictions")
    y = _as_finite_array(references, "references")
    _check_same_length(p, y)
    non_zero = y != 0
    acc2_non0, weighted_f1_non0 = _binary_accuracy_and_f1(y[non_zero] > 0, p[non_zero] > 0)
    acc2_has0, weighted_f1_has0 = _binary_accuracy_and_f1(y >= 0, p >= 0)
    return {
        "mae": float(np.mean(np.abs(p - y))),
        "corr": pearson_correlation(p, y),
        "acc7": float(np.mean(np.round(np.clip(p, -3, 3)) == np.round(np.clip(y, -3, 3)))),
        "acc5": float(np.mean(np.round(np.clip(p, -2, 2)) == np.round(np.clip(y, -2, 2)))),
        "acc2_non0": acc2_non0,
        "weighted_f1_non0": weighted_f1_non0,
        "acc2_has0": acc2_has0,
        "weighted_f1_has0": weighted_f1_has0,
    }


def erc_metrics(predictions: Sequence[Optional[str]], references: Sequence[str]) -> dict[str, float]:
    """ERC ``accuracy`` and ``weighted_f1`` (sklearn ``average="weighted"``: per-class F1 weighted by gold support).

    A ``None`` prediction is the class :data:`INVALID_PREDICTION`: it is wrong for every sample and, having
    no gold support, adds no weight of its own; it lowers the recall of the gold class it replaced.

    Raises:
        ValueError: if an argument is empty or the lengths differ.
    """
    if len(predictions) == 0:
        raise ValueError("`predictions` must not be empty")
    if len(references) == 0:
        raise ValueError("`references` must not be empty")
    _check_same_length(predictions, references)
    predicted = [INVALID_PREDICTION if label is None else label for label in predictions]
    gold = list(references)
    return {
        "accuracy": float(np.mean([p == y for p, y in zip(predicted, gold)])),
        "weighted_f1": float(f1_score(gold, predicted, average="weighted", zero_division=0)),
    }


def parse_failure_rate(generated_texts: Sequence[str]) -> float:
    """The fraction of `generated_texts` that :func:`~unimse_hf.labels.parse_universal_label` does not accept as valid."""
    if len(generated_texts) == 0:
        raise ValueError("`generated_texts` must not be empty")
    return float(np.mean([not parse_universal_label(text).valid for text in generated_texts]))


def msa_reference_score(reference: Union[float, str]) -> float:
    """Read a gold MSA score given as a number, a number string (``"-1.2"``) or a universal label string."""
    if isinstance(reference, numbers.Real) and not isinstance(reference, bool):
        score = float(reference)
    elif isinstance(reference, str) and "," in reference:
        score = parse_universal_label(reference).score
        if score is None:
            raise ValueError(f"gold label {reference!r} has no readable score")
    elif isinstance(reference, str):
        try:
            score = float(reference)
        except ValueError:
            raise ValueError(f"gold score {reference!r} is neither a number nor a universal label") from None
    else:
        raise ValueError(f"a gold MSA reference must be a number or a string, got {type(reference).__name__}")
    if not math.isfinite(score):
        raise ValueError(f"gold score {reference!r} is not finite")
    return score


def erc_reference_emotion(reference: str, dataset: str) -> str:
    """Read a gold emotion of `dataset` (``meld`` or ``iemocap``) given as a word, an IEMOCAP abbreviation
    (``"hap"``) or a universal label string (its slot for the dataset is used)."""
    key = dataset.lower() if isinstance(dataset, str) else dataset
    if key not in _EMOTIONS:
        raise ValueError(f"`dataset` must be one of {ERC_DATASETS}, got {dataset!r}")
    if not isinstance(reference, str):
        raise ValueError(f"a gold ERC reference must be a string, got {type(reference).__name__}")
    if "," in reference:
        emotion = getattr(parse_universal_label(reference), slot_for_dataset(key))
    else:
        emotion = reference.strip().lower()
        if key == "iemocap":
            emotion = IEMOCAP_ABBREVIATIONS.get(emotion, emotion)
    if emotion not in _EMOTIONS[key]:
        raise ValueError(f"gold reference {reference!r} has no {key} emotion from {_EMOTIONS[key]}")
    return emotion


def msa_generation_metrics(
    generated_texts: Sequence[str],
    references: Sequence[Union[float, str]],
    parse_failures: ParseFailureScoring = "wrong",
) -> dict[str, float]:
    """:func:`msa_metrics` of the score slot of generated texts against gold references (see
    :func:`msa_reference_score`), plus ``parse_failure_rate`` and ``num_samples``.

    A text whose score slot cannot be read is scored with :func:`worst_case_score` of its gold score
    (``parse_failures="wrong"``, the default) or as 0.0 (``"official"``, the official evaluation's fallback).
    """
    _check_parse_failure_scoring(parse_failures)
    if len(generated_texts) == 0:
        raise ValueError("`generated_texts` must not be empty")
    _check_same_length(generated_texts, references)
    gold = [msa_reference_score(reference) for reference in references]
    parsed = [parse_universal_label(text).score for text in generated_texts]
    if parse_failures == "wrong":
        predicted = [worst_case_score(y) if score is None else score for score, y in zip(parsed, gold)]
    else:
        predicted = [0.0 if score is None else score for score in parsed]
    metrics = msa_metrics(predicted, gold)
    metrics["parse_failure_rate"] = parse_failure_rate(generated_texts)
    metrics["num_samples"] = len(generated_texts)
    return metrics


def erc_generation_metrics(generated_texts: Sequence[str], references: Sequence[str], dataset: str) -> dict[str, float]:
    """:func:`erc_metrics` of generated texts (the dataset's emotion slot, wrong where unreadable) against gold
    references (see :func:`erc_reference_emotion`), plus ``parse_failure_rate`` and ``num_samples``."""
    if not isinstance(dataset, str) or dataset.lower() not in ERC_DATASETS:
        raise ValueError(f"`dataset` must be one of {ERC_DATASETS}, got {dataset!r}")
    if len(generated_texts) == 0:
        raise ValueError("`generated_texts` must not be empty")
    _check_same_length(generated_texts, references)
    slot = slot_for_dataset(dataset)
    predicted = [getattr(parse_universal_label(text), slot) for text in generated_texts]
    gold = [erc_reference_emotion(reference, dataset) for reference in references]
    metrics = erc_metrics(predicted, gold)
    metrics["parse_failure_rate"] = parse_failure_rate(generated_texts)
    metrics["num_samples"] = len(generated_texts)
    return metrics


def compute_unimse_metrics(
    generated_texts: Sequence[str],
    references: Sequence[Union[float, str]],
    datasets: Sequence[str],
    parse_failures: ParseFailureScoring = "wrong",
) -> dict[str, float]:
    """Evaluate generated labels of mixed datasets; return one flat dict.

    Sample ``i`` belongs to ``datasets[i]`` (``mosi``, ``mosei``, ``meld`` or ``iemocap``, any case). Each
    present dataset contributes its metrics under its prefix (``mosi_mae``, ``mosi_acc2_non0``,
    ``meld_weighted_f1``, ``meld_parse_failure_rate``, ``meld_num_samples``, ...). ``parse_failure_rate`` is
    over all samples, and :data:`AGGREGATE_METRIC` (``mean_primary``) is the unweighted mean over the present
    datasets of their :data:`PRIMARY_METRICS` value, skipping undefined (NaN) ones; it is NaN only if none is
    defined. Use it with ``metric_for_best_model="mean_primary"`` and ``greater_is_better=True``.

    References follow :func:`msa_reference_score` for MSA samples and :func:`erc_reference_emotion` for ERC
    samples: universal label strings work for every dataset. An unreadable prediction counts as wrong
    (see :func:`msa_generation_metrics` for `parse_failures`), so output that never parses cannot be selected
    as the best checkpoint.
    """
    _check_parse_failure_scoring(parse_failures)
    if len(generated_texts) == 0:
        raise ValueError("`generated_texts` must not be empty")
    _check_same_length(generated_texts, references)
    if len(datasets) != len(generated_texts):
        raise ValueError(f"`datasets` has {len(datasets)} items but `generated_texts` has {len(generated_texts)}")
    names = [name.lower() if isinstance(name, str) else name for name in datasets]
    unknown = sorted({repr(name) for name in names if name not in PRIMARY_METRICS})
    if unknown:
        raise ValueError(f"`datasets` must contain only {tuple(PRIMARY_METRICS)}, got {', '.join(unknown)}")

    results: dict[str, float] = {}
    primaries: list[float] = []
    for dataset in PRIMARY_METRICS:
        indices = [i for i, name in enumerate(names) if name == dataset]
        if not indices:
            continue
        texts = [generated_texts[i] for i in indices]
        gold = [references[i] for i in indices]
        if dataset in MSA_DATASETS:
            metrics = msa_generation_metrics(texts, gold, parse_failures=parse_failures)
        else:
            metrics = erc_generation_metrics(texts, gold, dataset)
        results.update({f"{dataset}_{name}": value for name, value in metrics.items()})
        primaries.append(metrics[PRIMARY_METRICS[dataset]])
    results["parse_failure_rate"] = parse_failure_rate(generated_texts)
    defined = [value for value in primaries if not math.isnan(value)]
    results[AGGREGATE_METRIC] = float(np.mean(defined)) if defined else math.nan
    return results


def push_metric_to_hub(
    metric_dir: Union[str, os.PathLike],
    repo_id: str,
    *,
    repo_type: Literal["space", "model"] = "space",
    token: Optional[str] = None,
    private: Optional[bool] = None,
    endpoint: Optional[str] = None,
    commit_message: Optional[str] = None,
) -> CommitInfo:
    """Upload an ``evaluate`` module folder (``<name>/<name>.py`` plus its card) to a Hub repository.

    Community metrics live in Gradio Spaces (the default); ``repo_type="model"`` is also accepted. The
    repository is created if needed; caches (``__pycache__``, ``*.pyc``) are not uploaded. ``endpoint``
    selects another Hub (e.g. a test server).
    """
    folder = Path(metric_dir)
    script = folder / f"{folder.name}.py"
    if not script.is_file():
        raise ValueError(f"`metric_dir` must contain the module script {script.name}, not found in {folder}")
    if repo_type not in ("space", "model"):
        raise ValueError(f"`repo_type` must be 'space' or 'model', got {repo_type!r}")
    api = HfApi(endpoint=endpoint, token=token)
    space_sdk = "gradio" if repo_type == "space" else None
    api.create_repo(repo_id, repo_type=repo_type, private=private, space_sdk=space_sdk, exist_ok=True)
    return api.upload_folder(
        repo_id=repo_id,
        folder_path=folder,
        repo_type=repo_type,
        commit_message=commit_message or f"Upload {folder.name} evaluation module",
        ignore_patterns=["*__pycache__*", "*.pyc"],
    )

# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""`evaluation_report.md` plus PNG figures for one evaluated UniMSE model.

`write_evaluation_report(output_dir, metrics, predictions, ...)` writes into `output_dir`:

* `evaluation_report.md`: a metric table per dataset (the model beside the baselines when given), the
  figures, and the parse-failure rate;
* `figures/scatter_<dataset>.png`: predicted against gold score for MOSI / MOSEI (one point per test row whose
  generated label has a score; the diagonal is a perfect prediction);
* `figures/confusion_<dataset>.png`: the MELD / IEMOCAP confusion matrix (rows gold, columns predicted, counts
  with row-normalised shading; an unreadable prediction is its own column);
* `figures/training_curves.png`: every logged loss part (`loss`, `lm_loss`, `cl_ta`, `cl_tv`, `cl_label`) of a
  `Trainer` log history against the step, and the evaluation loss when logged.

`link_report_from_model_card(model_dir)` adds a section to the checkpoint's `README.md` that links the report and
shows its figures, so they travel with the checkpoint to the Hub.

Figures are drawn with matplotlib's object-oriented API on the Agg canvas (no display, no pyplot global state).
The numbers in the report are the values of `metrics`, formatted with four decimals. This module is not uploaded
with checkpoints (it needs matplotlib).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from .labels import IEMOCAP_EMOTIONS, MELD_EMOTIONS, parse_universal_label, slot_for_dataset
from .metrics import ERC_DATASETS, MSA_DATASETS, INVALID_PREDICTION, erc_reference_emotion, msa_reference_score

REPORT_FILE = "evaluation_report.md"
FIGURES_DIR = "figures"
LOSS_PARTS = ("loss", "lm_loss", "cl_ta", "cl_tv", "cl_label")
"""Training-log keys drawn as training curves, when present."""

MSA_TABLE_METRICS = (("mae", "MAE (lower is better)"), ("corr", "Corr"), ("acc2_non0", "Acc-2 (non0)"),
                     ("weighted_f1_non0", "F1 (non0)"), ("acc2_has0", "Acc-2 (has0)"),
                     ("weighted_f1_has0", "F1 (has0)"), ("acc7", "Acc-7"))
ERC_TABLE_METRICS = (("accuracy", "Accuracy"), ("weighted_f1", "Weighted F1"))
DATASET_TITLES = {"mosi": "CMU-MOSI", "mosei": "CMU-MOSEI", "meld": "MELD", "iemocap": "IEMOCAP"}
CARD_SECTION_TITLE = "## Evaluation report"


@dataclass
class EvaluationReport:
    """What `write_evaluation_report` wrote: the report path and each figure's path (by figure name)."""

    report_path: Path
    figures: dict[str, Path] = field(default_factory=dict)


def _format(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{float(value):.4f}"


def _check_inputs(metrics: Mapping[str, float], predictions: Sequence[Mapping[str, Any]], metric_prefix: str) -> list[str]:
    if not isinstance(metrics, Mapping):
        raise TypeError(f"`metrics` must be a mapping of metric names to numbers, got {type(metrics).__name__}")
    if len(predictions) == 0:
        raise ValueError("`predictions` must not be empty")
    datasets: list[str] = []
    for index, row in enumerate(predictions):
        if not isinstance(row, Mapping):
            raise TypeError(f"`predictions[{index}]` must be a mapping, got {type(row).__name__}")
        missing = [key for key in ("dataset", "target", "generated") if not isinstance(row.get(key), str)]
        if missing:
            raise ValueError(f"`predictions[{index}]` needs string fields 'dataset', 'target' and 'generated'; "
                             f"missing or not a string: {missing}")
        dataset = row["dataset"].lower()
        if dataset not in MSA_DATASETS + ERC_DATASETS:
            raise ValueError(f"`predictions[{index}]['dataset']` must be one of {MSA_DATASETS + ERC_DATASETS}, "
                             f"got {row['dataset']!r}")
        if dataset not in datasets:
            datasets.append(dataset)
    for dataset in datasets:
        names = [name for name, _ in (MSA_TABLE_METRICS if dataset in MSA_DATASETS else ERC_TABLE_METRICS)]
        absent = [f"{metric_prefix}_{dataset}_{name}" for name in names if f"{metric_prefix}_{dataset}_{name}" not in metrics]
        if absent:
            raise ValueError(f"`metrics` has no {absent} for the {dataset} predictions "
                             f"(metric_prefix={metric_prefix!r})")
    return [d for d in MSA_DATASETS + ERC_DATASETS if d in datasets]


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def plot_score_scatter(predicted: Sequence[float], gold: Sequence[float], title: str, path: Union[str, os.PathLike]) -> None:
    """Predicted against gold sentiment score, with the diagonal, saved as a PNG at `path`."""
    figure = _new_figure(4.2, 4.0)
    axes = figure.add_subplot()
    jitter = np.random.default_rng(0).uniform(-0.04, 0.04, size=len(predicted))
    axes.scatter(np.asarray(gold, dtype=float), np.asarray(predicted, dtype=float) + jitter, s=5, alpha=0.35,
                 color="tab:blue", edgecolors="none")
    axes.plot([-3, 3], [-3, 3], color="tab:gray", linewidth=1, linestyle="--")
    axes.axhline(0, color="black", linewidth=0.5)
    axes.axvline(0, color="black", linewidth=0.5)
    axes.set(xlim=(-3.2, 3.2), ylim=(-3.2, 3.2), xlabel="gold score", ylabel="predicted score", title=title)
    figure.savefig(path)


def plot_confusion_matrix(predicted: Sequence[str], gold: Sequence[str], classes: Sequence[str], title: str,
                          path: Union[str, os.PathLike]) -> None:
    """Confusion matrix (rows gold, columns predicted; counts, shading normalised per gold row) saved at `path`."""
    columns = list(classes) + ([INVALID_PREDICTION] if INVALID_PREDICTION in predicted else [])
    counts = np.zeros((len(classes), len(columns)), dtype=int)
    for p, g in zip(predicted, gold):
        counts[classes.index(g), columns.index(p)] += 1
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    figure = _new_figure(1.0 + 0.62 * len(columns), 1.2 + 0.5 * len(classes))
    axes = figure.add_subplot()
    axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            axes.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=8,
                      color="white" if shares[i, j] > 0.55 else "black")
    axes.set_xticks(range(len(columns)), columns, rotation=45, ha="right", fontsize=8)
    axes.set_yticks(range(len(classes)), classes, fontsize=8)
    axes.set(xlabel="predicted", ylabel="gold", title=title)
    figure.savefig(path)


def plot_training_curves(log_history: Sequence[Mapping[str, Any]], path: Union[str, os.PathLike]) -> list[str]:
    """Each loss part of a `Trainer` log history (and `eval_loss`) against the step; returns the curves drawn."""
    figure = _new_figure(5.6, 3.6)
    axes = figure.add_subplot()
    drawn = []
    for key in LOSS_PARTS + ("eval_loss",):
        points = [(entry["step"], entry[key]) for entry in log_history
                  if key in entry and "step" in entry and isinstance(entry[key], (int, float))]
        if points:
            steps, values = zip(*points)
            axes.plot(steps, values, marker="o" if len(points) < 3 else None, markersize=3, label=key)
            drawn.append(key)
    axes.set(xlabel="optimizer step", ylabel="loss", title="training curves")
    if drawn:
        axes.legend(fontsize=8)
    axes.grid(alpha=0.3)
    figure.savefig(path)
    return drawn


def _metric_table(dataset: str, metrics: Mapping[str, float], metric_prefix: str,
                  baselines: Optional[Mapping[str, Any]]) -> list[str]:
    names = MSA_TABLE_METRICS if dataset in MSA_DATASETS else ERC_TABLE_METRICS
    columns = list((baselines or {}).get(dataset, {}).items())
    header = "| metric | UniMSE | " + " | ".join(_baseline_label(name, result) for name, result in columns) + " |"
    lines = [header.replace("|  |", "|"), "| --- | --- |" + " --- |" * len(columns)]
    for name, label in names:
        cells = [_format(metrics[f"{metric_prefix}_{dataset}_{name}"])]
        cells += [_format(_baseline_metrics(result).get(name)) for _, result in columns]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _baseline_metrics(result: Any) -> Mapping[str, float]:
    return result.metrics if hasattr(result, "metrics") else result["metrics"]


def _baseline_label(name: str, result: Any) -> str:
    description = result.description if hasattr(result, "description") else result.get("description", "")
    return f"{name}: {description}" if description else name


def write_evaluation_report(
    output_dir: Union[str, os.PathLike],
    metrics: Mapping[str, float],
    predictions: Sequence[Mapping[str, Any]],
    log_history: Sequence[Mapping[str, Any]] = (),
    baselines: Optional[Mapping[str, Mapping[str, Any]]] = None,
    metric_prefix: str = "test",
    title: str = "UniMSE evaluation report",
    notes: Sequence[str] = (),
) -> EvaluationReport:
    """Write `evaluation_report.md` and its figures into `output_dir`; return their paths.

    Args:
        output_dir: folder to write into (created if needed), e.g. the checkpoint folder.
        metrics: flat metrics as `UniMSETrainer.predict` returns them (`test_mosi_mae`, `test_meld_weighted_f1`,
            ...); every table metric of every dataset in `predictions` must be present.
        predictions: one mapping per evaluated row with `dataset`, `target` (gold universal label) and
            `generated` (the decoded model output), as `train_unimse.py` writes `test_predictions.jsonl`.
        log_history: `trainer.state.log_history` (training curves; the figure is left out when it has no loss).
        baselines: `{dataset: {baseline name: result}}` with results carrying `description` and `metrics`
            (`unimse_hf.baselines.baseline_metrics` output, or plain dicts with those keys), shown beside UniMSE.
        metric_prefix: the prefix of `metrics` keys (`"test"` or `"eval"`).
        title: the report's heading.
        notes: extra lines (e.g. the training recipe) put under the heading.

    Raises:
        TypeError / ValueError: for malformed `metrics` or `predictions` rows, or metrics missing for a dataset
            that has predictions; nothing is written then.
    """
    datasets = _check_inputs(metrics, predictions, metric_prefix)
    output = Path(output_dir)
    figures_dir = output / FIGURES_DIR
    figures_dir.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Path] = {}
    lines = [f"# {title}", ""]
    lines += [*notes, ""] if notes else []
    for dataset in datasets:
        rows = [row for row in predictions if row["dataset"].lower() == dataset]
        heading = DATASET_TITLES[dataset]
        lines += [f"## {heading} ({len(rows)} {metric_prefix} rows)", ""]
        lines += _metric_table(dataset, metrics, metric_prefix, baselines)
        failures = metrics.get(f"{metric_prefix}_{dataset}_parse_failure_rate")
        if failures is not None:
            lines += ["", f"Parse-failure rate: {_format(failures)}."]
        parsed = [parse_universal_label(row["generated"]) for row in rows]
        if dataset in MSA_DATASETS:
            pairs = [(label.score, msa_reference_score(row["target"])) for label, row in zip(parsed, rows)
                     if label.score is not None]
            name = f"scatter_{dataset}"
            path = figures_dir / f"{name}.png"
            plot_score_scatter([p for p, _ in pairs], [g for _, g in pairs],
                               f"{heading}: predicted vs gold ({len(pairs)} rows)", path)
            lines += ["", f"![{heading} predicted vs gold score]({FIGURES_DIR}/{path.name})",
                      f"{len(rows) - len(pairs)} rows without a readable score are left out of the plot."]
        else:
            slot = slot_for_dataset(dataset)
            predicted = [getattr(label, slot) or INVALID_PREDICTION for label in parsed]
            gold = [erc_reference_emotion(row["target"], dataset) for row in rows]
            name = f"confusion_{dataset}"
            path = figures_dir / f"{name}.png"
            classes = list(MELD_EMOTIONS if dataset == "meld" else IEMOCAP_EMOTIONS)
            plot_confusion_matrix(predicted, gold, classes, f"{heading} confusion matrix", path)
            lines += ["", f"![{heading} confusion matrix]({FIGURES_DIR}/{path.name})"]
        figures[name] = path
        lines.append("")
    overall = metrics.get(f"{metric_prefix}_parse_failure_rate")
    if overall is not None:
        lines += [f"Overall parse-failure rate: {_format(overall)}.", ""]
    if any("loss" in entry for entry in log_history):
        path = figures_dir / "training_curves.png"
        drawn = plot_training_curves(log_history, path)
        figures["training_curves"] = path
        lines += ["## Training curves", "", f"Logged parts: {', '.join(f'`{key}`' for key in drawn)}.", "",
                  f"![training curves]({FIGURES_DIR}/{path.name})", ""]
    report_path = output / REPORT_FILE
    report_path.write_text("\n".join(lines), encoding="utf-8")
    return EvaluationReport(report_path=report_path, figures=figures)


def link_report_from_model_card(model_dir: Union[str, os.PathLike], report: EvaluationReport) -> Path:
    """Append (or replace) the card section linking `report` and showing its figures in `model_dir/README.md`.

    The report must lie inside `model_dir` (links are relative, so they work on the Hub too).

    Raises:
        FileNotFoundError: if `model_dir` has no `README.md`.
        ValueError: if the report is not inside `model_dir`.
    """
    directory = Path(model_dir)
    card_path = directory / "README.md"
    if not card_path.is_file():
        raise FileNotFoundError(f"no model card (README.md) in {directory}")
    try:
        relative = Path(os.path.relpath(report.report_path.resolve(), directory.resolve()))
    except ValueError:
        relative = None
    if relative is None or relative.parts[0] == "..":
        raise ValueError(f"`report` {report.report_path} is not inside `model_dir` {directory}")
    base = relative.parent
    section = [CARD_SECTION_TITLE, "", f"Full report with baselines: [{relative.as_posix()}]({relative.as_posix()}).", ""]
    for name, path in report.figures.items():
        link = (base / FIGURES_DIR / path.name).as_posix()
        section.append(f"![{name.replace('_', ' ')}]({link})")
    text = card_path.read_text(encoding="utf-8")
    if CARD_SECTION_TITLE in text:
        text = text.split(CARD_SECTION_TITLE, 1)[0].rstrip() + "\n"
    card_path.write_text(text.rstrip() + "\n\n" + "\n".join(section) + "\n", encoding="utf-8")
    return card_path


__all__ = ["EvaluationReport", "write_evaluation_report", "link_report_from_model_card", "plot_score_scatter",
           "plot_confusion_matrix", "plot_training_curves", "REPORT_FILE"]

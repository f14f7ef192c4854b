# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Evaluation per modality subset: one eval set per combination of the modalities a model is given.

`modality_subsets(dataset, "mosi")` returns `{"mosi_text": ..., "mosi_text+acoustic": ...,
"mosi_text+visual": ..., "mosi_all": ...}`: the same rows with the other modalities removed (their
column dropped, which the collator reads as a missing modality). Passed as the Trainer's `eval_dataset`
(a dict), evaluation reports every metric once per subset, e.g. `eval_mosi_text+acoustic_mosi_mae`, so a
model trained with `modality_mask_prob` can be compared with and without each modality.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

MODALITIES = ("acoustic", "visual")
MODALITY_SUBSETS: dict[str, tuple[str, ...]] = {
    "text": (),
    "text+acoustic": ("acoustic",),
    "text+visual": ("visual",),
    "all": ("acoustic", "visual"),
}
"""Subset name -> the modalities (besides the text, always kept) that the subset keeps."""


def modality_subsets(dataset: Any, name: str) -> dict[str, Any]:
    """The four modality-subset variants of an eval set, keyed `<name>_<subset>` (see `MODALITY_SUBSETS`).

    Args:
        dataset: a `datasets.Dataset` or a list of row dicts (the UniMSE row schema) with both an `acoustic`
            and a `visual` column. A `Dataset` variant drops the removed columns (no copy of the data); a list
            variant holds shallow copies of the rows without those keys. The input is not changed.
        name: the eval set's name, the prefix of every key (for instance the corpus, `"mosi"`).

    Returns:
        `{"<name>_text": ..., "<name>_text+acoustic": ..., "<name>_text+visual": ..., "<name>_all": ...}`, of the
        same kind as `dataset`; `<name>_all` holds every row unchanged.

    Raises:
        TypeError: `name` is not a string, or `dataset` is neither a `Dataset` nor a list of mappings.
        ValueError: `name` is empty, or `dataset` lacks the `acoustic` or `visual` column (a subset that
            removes nothing would report the same metrics under two names).
    """
    if not isinstance(name, str):
        raise TypeError(f"`name` must be a string, got {type(name).__name__}")
    if not name.strip():
        raise ValueError("`name` must be a non-empty string (the prefix of the eval-set keys)")
    if hasattr(dataset, "column_names") and hasattr(dataset, "remove_columns"):
        _check_columns(list(dataset.column_names), "`dataset`")
        return {f"{name}_{subset}": dataset.remove_columns([m for m in MODALITIES if m not in kept]) if
                len(kept) < len(MODALITIES) else dataset for subset, kept in MODALITY_SUBSETS.items()}
    if isinstance(dataset, (str, bytes)) or not isinstance(dataset, Sequence):
        raise TypeError(f"`dataset` must be a datasets.Dataset or a list of row dicts, got {type(dataset).__name__}")
    for index, row in enumerate(dataset):
        if not isinstance(row, Mapping):
            raise TypeError(f"`dataset[{index}]` must be a row dict, got {type(row).__name__}")
        _check_columns(list(row), f"`dataset[{index}]` (row {row.get('id', index)!r})")
    variants = {}
    for subset, kept in MODALITY_SUBSETS.items():
        removed = [m for m in MODALITIES if m not in kept]
        variants[f"{name}_{subset}"] = [{key: value for key, value in row.items() if key not in removed}
                                        for row in dataset]
    return variants


def _check_columns(columns: list[str], where: str) -> None:
    missing = [modality for modality in MODALITIES if modality not in columns]
    if missing:
        raise ValueError(f"{where} has no {' or '.join(repr(m) for m in missing)} column; modality subsets need "
                         f"both {MODALITIES} (found {sorted(columns)})")


__all__ = ["MODALITY_SUBSETS", "modality_subsets"]

# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""The one row schema every converter produces.

Every source (MOSI, MOSEI, MELD, IEMOCAP; CSV, ``.csd`` or pickle) becomes ``datasets`` rows with
these columns:

======================  ======================================  ==========================================
column                  type                                    meaning
======================  ======================================  ==========================================
``id``                  string                                  ``{dataset}/{split}/{key}``, unique across
                                                                splits and corpora (B15); ``key`` is the
                                                                source's own utterance id (``03bSnISJMiM_1``,
                                                                ``dia0_utt3``, ``Ses01F_impro01_F000``)
``dataset``             string                                  ``mosi``, ``mosei``, ``meld`` or ``iemocap``
``split``               string                                  ``train``, ``validation`` or ``test``
``clip``                string                                  the video (MOSI, MOSEI) or dialogue (MELD,
                                                                IEMOCAP) the utterance was cut from; the
                                                                splits are disjoint by clip (checked)
``text``                string or null                          the utterance transcript (null only for
                                                                label-only sources such as a labels ``.csd``)
``context``             string or null                          ERC only: the ±2 utterance window with the
                                                                target wrapped in ``</s>`` markers
``speaker``             string or null                          ERC only: MELD speaker name / IEMOCAP F or M
``acoustic``            list of list of float32, or null        frames x features, already cut to the true
                                                                length (B20); null when the source has none
``visual``              list of list of float32, or null        same for the visual modality
``word_timestamps``     list of {word, start, end} or null      seconds from the segment start (``.csd``)
``score``               float64 or null                         sentiment in [-3, 3] (gold for MSA)
``polarity``            string                                  ``positive`` / ``negative`` / ``neutral``
``meld_emotion``        string or null                          one of ``MELD_EMOTIONS``
``iemocap_emotion``     string or null                          one of ``IEMOCAP_EMOTIONS`` (words, not
                                                                abbreviations)
``slot_sources``        {score, meld_emotion, iemocap_emotion}  where each slot came from: ``gold``,
                        of strings, or null                     ``neutral-default``, ``polarity-default`` or
                                                                ``transfer:<id of the source row>``
``target``              string or null                          the universal label string the decoder learns
======================  ======================================  ==========================================

A converter fills the slots its source knows and leaves the others null; ``slot_sources`` and
``target`` stay null until :mod:`unimse_hf.universal_labels` completes the labels. The model input
text is ``context`` where it is set (ERC) and ``text`` otherwise.

``acoustic``/``visual`` are stored as ``List(List(float32))`` rather than ``Array2D(shape=(None, D))``:
both round-trip through Parquet, but only the nested list keeps a null row null (``Array2D`` reads
it back as NaN), works for any feature width, and reads back with plain pandas/pyarrow. With
``.with_format("numpy")`` a row comes back as a ``(T, D)`` float32 array.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np

DATASET_NAMES: tuple[str, ...] = ("mosi", "mosei", "meld", "iemocap")
"""The four corpora UniMSE trains on."""

SPLITS: tuple[str, ...] = ("train", "validation", "test")
"""Split names, as ``datasets`` spells them."""

LABEL_SLOTS: tuple[str, ...] = ("score", "meld_emotion", "iemocap_emotion")
"""The label slots a corpus may or may not know; polarity is always known."""

MSA_DATASETS: tuple[str, ...] = ("mosi", "mosei")
"""Corpora with sentiment scores (multimodal sentiment analysis)."""

ERC_DATASETS: tuple[str, ...] = ("meld", "iemocap")
"""Corpora with emotion classes (emotion recognition in conversation)."""

_SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "valid": "validation",
    "validation": "validation",
    "val": "validation",
    "dev": "validation",
    "test": "test",
}

COLUMNS: tuple[str, ...] = (
    "id",
    "dataset",
    "split",
    "clip",
    "text",
    "context",
    "speaker",
    "acoustic",
    "visual",
    "word_timestamps",
    "score",
    "polarity",
    "meld_emotion",
    "iemocap_emotion",
    "slot_sources",
    "target",
)
"""Column order of every converted dataset."""


def unimse_features():
    """Return the ``datasets.Features`` of the schema above."""
    from datasets import Features, List, Value

    frames = List(List(Value("float32")))
    return Features(
        {
            "id": Value("string"),
            "dataset": Value("string"),
            "split": Value("string"),
            "clip": Value("string"),
            "text": Value("string"),
            "context": Value("string"),
            "speaker": Value("string"),
            "acoustic": frames,
            "visual": frames,
            "word_timestamps": List({"word": Value("string"), "start": Value("float64"), "end": Value("float64")}),
            "score": Value("float64"),
            "polarity": Value("string"),
            "meld_emotion": Value("string"),
            "iemocap_emotion": Value("string"),
            "slot_sources": {slot: Value("string") for slot in LABEL_SLOTS},
            "target": Value("string"),
        }
    )


def normalize_split(name: str) -> str:
    """Map a source's split name (``dev``, ``valid``, ``train``...) to ``train``/``validation``/``test``."""
    key = str(name).strip().lower()
    if key not in _SPLIT_ALIASES:
        raise ValueError(f"unknown split name {name!r}; expected one of {sorted(_SPLIT_ALIASES)}")
    return _SPLIT_ALIASES[key]


def make_id(dataset: str, split: str, key: str) -> str:
    """Return the split-qualified row id ``{dataset}/{split}/{key}``."""
    return f"{dataset}/{split}/{key}"


def key_of_id(row_id: str) -> str:
    """Return the source key of a row id (the part after ``{dataset}/{split}/``)."""
    return row_id.split("/", 2)[2]


def split_of_id(row_id: str) -> str:
    """Return the split of a row id."""
    return row_id.split("/", 2)[1]


def make_row(
    *,
    dataset: str,
    split: str,
    key: str,
    polarity: str,
    clip: Optional[str] = None,
    text: Optional[str] = None,
    context: Optional[str] = None,
    speaker: Optional[str] = None,
    acoustic: Optional[np.ndarray] = None,
    visual: Optional[np.ndarray] = None,
    word_timestamps: Optional[Sequence[Mapping[str, Any]]] = None,
    score: Optional[float] = None,
    meld_emotion: Optional[str] = None,
    iemocap_emotion: Optional[str] = None,
) -> dict[str, Any]:
    """Build one schema row (a dict) with the id qualified by dataset and split.

    ``clip`` is the video or dialogue the utterance belongs to; ``None`` makes the utterance its own
    clip (a source without grouping). Slots the source does not know stay ``None``; ``slot_sources``
    and ``target`` are left ``None``. Values are checked when rows become a dataset
    (:func:`rows_to_dataset`), not here.
    """
    if dataset not in DATASET_NAMES:
        raise ValueError(f"`dataset` must be one of {DATASET_NAMES}, got {dataset!r}")
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {SPLITS}, got {split!r}")
    return {
        "id": make_id(dataset, split, key),
        "dataset": dataset,
        "split": split,
        "clip": key if clip is None else clip,
        "text": text,
        "context": context,
        "speaker": speaker,
        "acoustic": acoustic,
        "visual": visual,
        "word_timestamps": None if word_timestamps is None else list(word_timestamps),
        "score": None if score is None else float(score),
        "polarity": polarity,
        "meld_emotion": meld_emotion,
        "iemocap_emotion": iemocap_emotion,
        "slot_sources": None,
        "target": None,
    }


_ROWS_PER_CHUNK = 2048


def rows_to_dataset(rows: Iterable[Mapping[str, Any]], source: Optional[str] = None):
    """Turn schema rows into a ``datasets.Dataset`` with :func:`unimse_features`.

    The rows are checked first (:func:`unimse_hf.data.validation.check_rows`: unique ids, valid
    values, finite frames of one width, splits disjoint by clip); an error names ``source`` and the
    row id. Frame matrices go to Arrow straight from NumPy (no per-float Python objects), so corpora
    with features stay within memory.
    """
    from .validation import check_rows

    rows = list(rows)
    check_rows(rows, source)
    return _build_dataset(rows)


def _build_dataset(rows: list[Mapping[str, Any]]):
    import pyarrow as pa
    from datasets import Dataset
    from datasets.table import InMemoryTable

    schema = unimse_features().arrow_schema
    tables = []
    for start in range(0, max(len(rows), 1), _ROWS_PER_CHUNK):  # chunks keep Arrow's int32 offsets in range
        chunk = rows[start : start + _ROWS_PER_CHUNK]
        arrays = []
        for name in COLUMNS:
            values = [row.get(name) for row in chunk]
            if name in ("acoustic", "visual"):
                arrays.append(_frames_to_arrow(values))
            else:
                arrays.append(pa.array(values, type=schema.field(name).type))
        tables.append(pa.Table.from_arrays(arrays, schema=schema))
    return Dataset(InMemoryTable(pa.concat_tables(tables)))


def _frames_to_arrow(column: Sequence[Optional[Any]]):
    """Build a ``list<list<float32>>`` Arrow array from frame matrices (``None`` stays null)."""
    import pyarrow as pa

    matrices = [None if value is None else np.asarray(value, dtype=np.float32).reshape(len(value), -1) for value in column]
    present = [m for m in matrices if m is not None]
    flat = np.concatenate([m.reshape(-1) for m in present]) if present else np.zeros(0, np.float32)
    widths = np.concatenate([np.full(m.shape[0], m.shape[1], np.int64) for m in present]) if present else np.zeros(0, np.int64)
    frame_offsets = np.concatenate([[0], np.cumsum(widths)])
    counts = np.array([0 if m is None else m.shape[0] for m in matrices], np.int64)
    row_offsets = np.concatenate([[0], np.cumsum(counts)])
    frames = pa.ListArray.from_arrays(pa.array(frame_offsets, pa.int32()), pa.array(flat, pa.float32()))
    mask = pa.array([m is None for m in matrices], pa.bool_())
    return pa.ListArray.from_arrays(pa.array(row_offsets, pa.int32()), frames, mask=mask)


def rows_to_dataset_dict(rows: Iterable[Mapping[str, Any]], source: Optional[str] = None):
    """Group schema rows by their ``split`` into a ``datasets.DatasetDict`` (splits in schema order).

    All rows are checked together first (see :func:`rows_to_dataset`), so a clip in two splits or an
    id repeated across splits is an error naming ``source``.
    """
    from datasets import DatasetDict

    from .validation import check_rows

    rows = list(rows)
    check_rows(rows, source)
    by_split: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_split.setdefault(row["split"], []).append(row)
    return DatasetDict({split: _build_dataset(by_split[split]) for split in SPLITS if split in by_split})

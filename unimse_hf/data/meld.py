# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""MELD from its official CSVs, with optional official feature pickle.

The folder must hold ``train_sent_emo.csv``, ``dev_sent_emo.csv`` and ``test_sent_emo.csv``
(columns ``Utterance``, ``Speaker``, ``Emotion``, ``Sentiment``, ``Dialogue_ID``, ``Utterance_ID``).
Row keys are ``dia<Dialogue_ID>_utt<Utterance_ID>`` (the clip file name), qualified by split in
the row id because MELD's numbering restarts in every split (B15). ``polarity`` is the
``Sentiment`` column and ``meld_emotion`` the ``Emotion`` column; the score is unknown.

Every line is checked (transcript, emotion and sentiment present and in their label sets, integer
ids, each utterance once); an error names the file, column and lines. The ``clip`` is the dialogue,
qualified by split because MELD numbers its dialogues per split (the release keeps each split's clips
in its own folder).

``context`` is the ±2 window of the dialogue (turns ordered by ``Utterance_ID``) with speaker names
and ``</s>`` markers, see :mod:`unimse_hf.data.context`.
"""

from __future__ import annotations

import os
from typing import Any, Optional

import pandas as pd

from ..labels import MELD_EMOTIONS, POLARITIES
from .context import TokenCounter, build_context
from .csv_source import check_complete, check_unique, file_lines, read_source_csv
from .dialogue_features import read_dialogue_feature_pickle
from .errors import MalformedSourceError, PathLike, require_file
from .features import join_frames
from .schema import make_row

MELD_FILES: dict[str, str] = {"train": "train_sent_emo.csv", "validation": "dev_sent_emo.csv", "test": "test_sent_emo.csv"}
"""The official CSV file of each split."""

_COLUMNS = ("Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID")


def meld_key(dialogue_id: int, utterance_id: int) -> str:
    """Return the row key of a MELD utterance, ``dia{dialogue}_utt{utterance}``."""
    return f"dia{int(dialogue_id)}_utt{int(utterance_id)}"


def _meld_feature_key(raw: str) -> str:
    dialogue, _, utterance = raw.partition("_")
    try:
        return meld_key(int(dialogue), int(utterance))
    except ValueError:
        return raw


def meld_clip(split: str, dialogue_id: int) -> str:
    """Return the clip of a MELD utterance: its dialogue, qualified by split (MELD numbers dialogues per split)."""
    return f"{split}/dia{int(dialogue_id)}"


def _read_split(path: str) -> pd.DataFrame:
    frame = read_source_csv(path, "MELD CSV", dtype=str, keep_default_na=False, na_values=[""])
    for column in _COLUMNS:
        if column not in frame.columns:
            raise MalformedSourceError(path, f"missing column; the file has {list(frame.columns)}", column)
    for column in ("Utterance", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID"):
        check_complete(frame, column, path)
    for column in ("Dialogue_ID", "Utterance_ID"):
        whole = frame[column].str.strip().str.fullmatch(r"\d+")
        if not whole.all():
            raise MalformedSourceError(path, f"not a non-negative integer in file lines {file_lines(frame.index[~whole])}", column)
        frame[column] = frame[column].astype(int)
    for column, allowed in (("Emotion", MELD_EMOTIONS), ("Sentiment", POLARITIES)):
        values = frame[column].str.strip().str.lower()
        bad = ~values.isin(allowed)
        if bad.any():
            raise MalformedSourceError(
                path, f"unknown values {sorted(set(values[bad]))} in file lines {file_lines(frame.index[bad])}; expected {list(allowed)}", column
            )
    keys = "dia" + frame["Dialogue_ID"].astype(str) + "_utt" + frame["Utterance_ID"].astype(str)
    check_unique(frame, keys, path, "Utterance_ID")
    frame["Utterance"] = frame["Utterance"].astype(str)
    frame["Speaker"] = frame["Speaker"].fillna("").astype(str)
    return frame


def read_meld(
    folder: PathLike,
    features_path: Optional[PathLike] = None,
    trust_pickle: bool = False,
    window: int = 2,
    count_tokens: Optional[TokenCounter] = None,
    max_context_tokens: Optional[int] = None,
) -> list[dict[str, Any]]:
    """Read the three MELD CSVs in ``folder`` into rows, with context windows and optional features.

    Args:
        folder: folder holding the official ``*_sent_emo.csv`` files.
        features_path: optional official ``meld_data_0610.pkl`` (see :mod:`.dialogue_features`).
        trust_pickle: required to read ``features_path`` (unpickling executes code from the file).
        window: context turns before and after the target.
        count_tokens, max_context_tokens: optional token budget for the context window.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"MELD folder not found: {folder}")
    tables = read_dialogue_feature_pickle(features_path, trust_pickle, _meld_feature_key) if features_path else None
    rows = []
    for split, name in MELD_FILES.items():
        path = require_file(os.path.join(folder, name), "MELD CSV")
        frame = _read_split(path)
        split_rows = []
        for dialogue_id, dialogue in frame.groupby("Dialogue_ID", sort=True):
            dialogue = dialogue.sort_values("Utterance_ID")
            texts, speakers = dialogue["Utterance"].tolist(), dialogue["Speaker"].tolist()
            emotions, sentiments = dialogue["Emotion"].tolist(), dialogue["Sentiment"].tolist()
            for index, utterance_id in enumerate(dialogue["Utterance_ID"].tolist()):
                split_rows.append(
                    make_row(
                        dataset="meld",
                        split=split,
                        key=meld_key(dialogue_id, utterance_id),
                        clip=meld_clip(split, dialogue_id),
                        text=" ".join(texts[index].split()),
                        context=build_context(texts, index, speakers, window, count_tokens, max_context_tokens),
                        speaker=speakers[index],
                        polarity=sentiments[index].strip().lower(),
                        meld_emotion=emotions[index].strip().lower(),
                    )
                )
        if tables is not None:
            join_frames(split_rows, tables[split], features_path)
        rows.extend(split_rows)
    return rows

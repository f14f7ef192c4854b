# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""MELD from its official CSVs, with optional official feature pickle.

The folder must hold ``train_sent_emo.csv``, ``dev_sent_emo.csv`` and ``test_sent_emo.csv``
(columns ``Utterance``, ``Speaker``, ``Emotion``, ``Sentiment``, ``Dialogue_ID``, ``Utterance_ID``).
Row keys are ``dia<Dialogue_ID>_utt<Utterance_ID>`` (the clip file name), qualified by split in
the row id because MELD's numbering restarts in every split (B15). ``polarity`` is the
``Sentiment`` column and ``meld_emotion`` the ``Emotion`` column; the score is unknown.

``context`` is the ±2 window of the dialogue (turns ordered by ``Utterance_ID``) with speaker names
and ``</s>`` markers, see :mod:`unimse_hf.data.context`.
"""

from __future__ import annotations

import os
from typing import Any, Optional

import pandas as pd

from ..labels import MELD_EMOTIONS, POLARITIES
from .context import TokenCounter, build_context
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


def _read_split(path: str) -> pd.DataFrame:
    frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
    for column in _COLUMNS:
        if column not in frame.columns:
            raise MalformedSourceError(path, f"missing column; the file has {list(frame.columns)}", column)
    for column in ("Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID"):
        missing = frame.index[frame[column].isna()]
        if len(missing):
            raise MalformedSourceError(path, f"empty values in file lines {[int(i) + 2 for i in missing[:5]]}", column)
    for column, allowed in (("Emotion", MELD_EMOTIONS), ("Sentiment", POLARITIES)):
        bad = sorted(set(frame[column].str.strip().str.lower()) - set(allowed))
        if bad:
            raise MalformedSourceError(path, f"unknown values {bad}; expected {list(allowed)}", column)
    if frame.duplicated(["Dialogue_ID", "Utterance_ID"]).any():
        first = frame[frame.duplicated(["Dialogue_ID", "Utterance_ID"])].iloc[0]
        raise MalformedSourceError(path, f"utterance dia{first.Dialogue_ID}_utt{first.Utterance_ID} appears twice", "Utterance_ID")
    frame["Utterance"] = frame["Utterance"].fillna("").astype(str)
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
        for _, dialogue in frame.groupby("Dialogue_ID", sort=True):
            dialogue = dialogue.sort_values("Utterance_ID")
            texts, speakers = dialogue["Utterance"].tolist(), dialogue["Speaker"].tolist()
            for index, line in enumerate(dialogue.itertuples(index=False)):
                context = build_context(texts, index, speakers, window, count_tokens, max_context_tokens)
                split_rows.append(
                    make_row(
                        dataset="meld",
                        split=split,
                        key=meld_key(line.Dialogue_ID, line.Utterance_ID),
                        text=" ".join(texts[index].split()),
                        context=context,
                        speaker=speakers[index],
                        polarity=line.Sentiment.strip().lower(),
                        meld_emotion=line.Emotion.strip().lower(),
                    )
                )
        if tables is not None:
            join_frames(split_rows, tables[split], features_path)
        rows.extend(split_rows)
    return rows

# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""IEMOCAP from a label CSV (the official ``IEMOCAP_all.csv`` layout) and the official feature pickle.

The CSV needs ``vid_cid`` (``Ses01F_impro01_F000``: dialogue, then the speaker letter and turn
number), ``label`` (the release abbreviation) and ``text``; ``start_stop`` (``[6.2901 - 8.2357]``)
orders turns when the whole dialogue is the context.

* **Classes.** Only the six UniMSE classes are kept (hap, sad, neu, ang, exc, fru, written as the
  words of ``IEMOCAP_EMOTIONS``); utterances labelled sur, fea, dis, oth or xxx are left out, as
  the official training data does. ``keep_other_emotions=True`` keeps them with their raw
  abbreviation, only to serve as a label-transfer pool that reproduces the official dropping (B17).
* **Polarity** (``Sim_Process_v3.py:82-87``): neu -> neutral, hap/exc -> positive, every other label
  -> negative.
* **Context.** ``context="speaker"`` (official default, B18) builds the ±2 window from the same
  speaker's turns in the dialogue, without names; ``context="dialogue"`` uses all turns ordered by
  start time, each preceded by its speaker letter (F or M). Windows are built over all turns,
  whatever their label.
* **Splits.** With the official feature pickle, an utterance's split is the feature dict that holds
  it, and utterances without features are left out (as the official scripts iterate over the
  feature keys; the number left out is logged). Without it, Session 5 is the test split and a seeded ``validation_fraction`` of the
  Session 1-4 dialogues is the validation split (whole dialogues, so no context crosses splits).
  The ``clip`` is the dialogue, so the splits are checked to be disjoint by dialogue.
"""

from __future__ import annotations

import logging
import random
import re
from typing import Any, Literal, Optional

import pandas as pd

from ..labels import IEMOCAP_ABBREVIATIONS
from .context import TokenCounter, build_context
from .dialogue_features import read_dialogue_feature_pickle
from .csv_source import check_unique, read_source_csv
from .errors import MalformedSourceError, PathLike, require_file
from .schema import make_row
from .validation import is_blank

logger = logging.getLogger(__name__)

IEMOCAP_POSITIVE: frozenset[str] = frozenset({"hap", "exc"})
"""Abbreviations with positive polarity; ``neu`` is neutral and every other label negative."""

_TURN = re.compile(r"^(?P<dialogue>.+)_(?P<speaker>[FM])(?P<turn>\d+)$")
_START = re.compile(r"\[\s*([0-9.]+)")


def iemocap_polarity(abbreviation: str) -> str:
    """Return the polarity of an IEMOCAP label abbreviation, as the official transfer script assigns it."""
    if abbreviation == "neu":
        return "neutral"
    return "positive" if abbreviation in IEMOCAP_POSITIVE else "negative"


def _session_split(dialogues: list[str], validation_fraction: float, seed: int) -> dict[str, str]:
    test = sorted(d for d in dialogues if d.startswith("Ses05"))
    rest = sorted(d for d in dialogues if not d.startswith("Ses05"))
    shuffled = rest[:]
    random.Random(seed).shuffle(shuffled)
    validation = set(shuffled[: round(len(rest) * validation_fraction)])
    splits = {d: "test" for d in test}
    splits.update({d: ("validation" if d in validation else "train") for d in rest})
    return splits


def read_iemocap(
    label_csv: PathLike,
    features_path: Optional[PathLike] = None,
    trust_pickle: bool = False,
    context: Literal["speaker", "dialogue"] = "speaker",
    window: int = 2,
    keep_other_emotions: bool = False,
    validation_fraction: float = 0.1,
    seed: int = 42,
    count_tokens: Optional[TokenCounter] = None,
    max_context_tokens: Optional[int] = None,
) -> list[dict[str, Any]]:
    """Read IEMOCAP utterances into rows (see the module docstring for classes, context and splits)."""
    path = require_file(label_csv, "IEMOCAP label CSV")
    if context not in ("speaker", "dialogue"):
        raise ValueError(f"`context` must be 'speaker' or 'dialogue', got {context!r}")
    frame = read_source_csv(path, "IEMOCAP label CSV", keep_default_na=False, na_values=[""])
    required = ("vid_cid", "label", "text") + (("start_stop",) if context == "dialogue" else ())
    for column in required:
        if column not in frame.columns:
            raise MalformedSourceError(path, f"missing column; the file has {list(frame.columns)}", column)
        missing = frame.index[frame[column].isna()]
        if len(missing) and column != "text":
            raise MalformedSourceError(path, f"empty values in file lines {[int(i) + 2 for i in missing[:5]]}", column)
    frame["text"] = frame["text"].fillna("").astype(str)
    parts = frame["vid_cid"].astype(str).str.extract(_TURN)
    if parts["dialogue"].isna().any():
        bad = frame["vid_cid"][parts["dialogue"].isna()].iloc[0]
        raise MalformedSourceError(path, f"utterance id {bad!r} is not <dialogue>_<F|M><turn>", "vid_cid")
    check_unique(frame, frame["vid_cid"].astype(str), path, "vid_cid")
    frame = frame.assign(dialogue=parts["dialogue"], speaker=parts["speaker"], turn=parts["turn"].astype(int))
    if context == "dialogue":
        starts = frame["start_stop"].astype(str).str.extract(_START)[0]
        if starts.isna().any():
            raise MalformedSourceError(path, f"unreadable time {frame['start_stop'][starts.isna()].iloc[0]!r}", "start_stop")
        frame["start"] = starts.astype(float)

    tables = read_dialogue_feature_pickle(features_path, trust_pickle) if features_path else None
    if tables is not None:
        split_of_key = {}
        for split, table in tables.items():
            for key in table:
                if split_of_key.setdefault(key, split) != split:
                    raise MalformedSourceError(features_path, f"utterance {key!r} is in both {split_of_key[key]} and {split}")
        unfeatured = int((~frame["vid_cid"].isin(split_of_key)).sum())
        if unfeatured:
            logger.warning("%s: %d utterances have no features in %s and are left out, as the official scripts do", path, unfeatured, features_path)
    else:
        by_dialogue = _session_split(sorted(frame["dialogue"].unique()), validation_fraction, seed)
        split_of_key = dict(zip(frame["vid_cid"], frame["dialogue"].map(by_dialogue)))

    group_keys = ["dialogue", "speaker"] if context == "speaker" else ["dialogue"]
    order = ["turn"] if context == "speaker" else ["start", "speaker", "turn"]
    rows = []
    for _, turns in frame.groupby(group_keys, sort=True):
        turns = turns.sort_values(order)
        texts = [" ".join(t.split()) for t in turns["text"]]
        speakers = turns["speaker"].tolist() if context == "dialogue" else None
        for index, line in enumerate(turns.itertuples(index=False)):
            label, split = str(line.label).strip().lower(), split_of_key.get(line.vid_cid)
            if split is None or (label not in IEMOCAP_ABBREVIATIONS and not keep_other_emotions):
                continue
            if is_blank(texts[index]):
                raise MalformedSourceError(path, f"utterance {line.vid_cid!r} has no transcript", "text")
            row = make_row(
                dataset="iemocap",
                split=split,
                key=line.vid_cid,
                clip=line.dialogue,
                text=texts[index],
                context=build_context(texts, index, speakers, window, count_tokens, max_context_tokens),
                speaker=line.speaker,
                polarity=iemocap_polarity(label),
                iemocap_emotion=IEMOCAP_ABBREVIATIONS.get(label, label),
            )
            if tables is not None:
                row.update({k: v for k, v in tables[split][line.vid_cid].items() if v is not None})
            rows.append(row)
    return rows

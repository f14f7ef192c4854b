# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""MELD from the real official CSVs, plus the official feature-pickle layout."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
from fixtures_data import MELD_DIR, frames, write_dialogue_feature_pickle, write_meld_subset

from unimse_hf.data.errors import MalformedSourceError
from unimse_hf.data.meld import read_meld
from unimse_hf.data.schema import rows_to_dataset_dict


@pytest.fixture(scope="module")
def meld_rows():
    return read_meld(MELD_DIR)


def test_meld_csv_gives_official_split_sizes(meld_rows):
    counts = Counter(row["split"] for row in meld_rows)
    assert (counts["train"], counts["validation"], counts["test"]) == (9989, 1109, 2610)


def test_meld_ids_are_unique_because_they_are_split_qualified(meld_rows):
    ids = [row["id"] for row in meld_rows]
    assert len(set(ids)) == len(ids)
    assert {"meld/train/dia0_utt0", "meld/validation/dia0_utt0", "meld/test/dia0_utt0"} <= set(ids)


def test_meld_polarity_and_emotion_come_from_the_sentiment_and_emotion_columns(meld_rows):
    train = [row for row in meld_rows if row["split"] == "train"]
    assert Counter(row["meld_emotion"] for row in train) == {
        "neutral": 4710, "joy": 1743, "surprise": 1205, "anger": 1109, "sadness": 683, "disgust": 271, "fear": 268,
    }
    assert all(row["score"] is None and row["iemocap_emotion"] is None for row in train)
    assert {row["polarity"] for row in train} == {"positive", "negative", "neutral"}


def test_meld_context_has_speakers_and_wraps_the_target_in_markers(meld_rows):
    row = next(r for r in meld_rows if r["id"] == "meld/train/dia0_utt4")
    assert row["text"] == "My duties? All right." and row["speaker"] == "Chandler"
    before, target, after = row["context"].split("</s>")
    assert target.strip() == "Chandler My duties? All right."
    assert before.strip().startswith("Chandler That I did. That I did. The Interviewer So let’s talk")
    assert after.strip().startswith("The Interviewer Now you’ll be heading a whole division")
    assert row["context"].count("</s>") == 2


def test_meld_first_turn_context_has_only_future_turns(meld_rows):
    row = next(r for r in meld_rows if r["id"] == "meld/train/dia0_utt0")
    assert row["context"].startswith("</s> Chandler also I was the point person")


def test_meld_rows_build_a_dataset_with_null_features(meld_rows):
    dataset = rows_to_dataset_dict(meld_rows[:50])
    assert dataset["train"][0]["acoustic"] is None and dataset["train"][0]["visual"] is None


def test_meld_features_are_joined_by_dialogue_and_utterance_per_split(tmp_path):
    folder = write_meld_subset(str(tmp_path / "meld"), dialogues=2)
    plain = read_meld(folder)
    keys = {split: [r["id"].split("/")[2].replace("dia", "").replace("utt", "") for r in plain if r["split"] == split]
            for split in ("train", "validation", "test")}
    # The test split's features are stored in reverse order: only a join by key gets them right.
    pickle_path = write_dialogue_feature_pickle(
        str(tmp_path / "meld.pkl"), [keys["train"], keys["validation"], list(reversed(keys["test"]))]
    )
    rows = read_meld(folder, pickle_path, trust_pickle=True)
    test_rows = [r for r in rows if r["split"] == "test"]
    assert all(r["acoustic"] is not None and r["visual"].shape == (2, 64) for r in rows)
    n = len(keys["test"]) - 1  # position of test key 0 in the reversed dict
    assert np.array_equal(test_rows[0]["acoustic"], frames(3 + n % 4, 64, seed=n))


def test_meld_feature_pickle_needs_trust(tmp_path):
    folder = write_meld_subset(str(tmp_path / "meld"), dialogues=1)
    pickle_path = write_dialogue_feature_pickle(str(tmp_path / "meld.pkl"), [["0_0"], ["0_0"], ["0_0"]])
    with pytest.raises(ValueError, match="executes code from the file"):
        read_meld(folder, pickle_path)


def test_meld_csv_with_an_unknown_emotion_names_file_and_column(tmp_path):
    folder = write_meld_subset(str(tmp_path / "meld"), dialogues=1)
    path = tmp_path / "meld" / "dev_sent_emo.csv"
    frame = pd.read_csv(path)
    frame.loc[0, "Emotion"] = "boredom"
    frame.to_csv(path, index=False)
    with pytest.raises(MalformedSourceError, match=r"dev_sent_emo\.csv \[Emotion\]: unknown values \['boredom'\]"):
        read_meld(folder)

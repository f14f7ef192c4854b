# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""IEMOCAP from the official label-CSV layout and feature-pickle layout (fixtures: IEMOCAP is not redistributable)."""

from __future__ import annotations

import pytest
from fixtures_data import IEMOCAP_TURNS, write_dialogue_feature_pickle, write_iemocap_csv

from unimse_hf.data.errors import MalformedSourceError
from unimse_hf.data.iemocap import iemocap_polarity, read_iemocap


@pytest.fixture
def label_csv(tmp_path):
    return write_iemocap_csv(str(tmp_path / "IEMOCAP_all.csv"))


def by_key(rows):
    return {row["id"].split("/", 2)[2]: row for row in rows}


def test_only_the_six_classes_are_kept_and_written_as_words(label_csv):
    rows = by_key(read_iemocap(label_csv))
    assert "Ses01F_impro01_F002" not in rows and "Ses05F_impro03_M000" not in rows  # sur, xxx
    assert len(rows) == len(IEMOCAP_TURNS) - 2
    assert rows["Ses02M_script01_1_F000"]["iemocap_emotion"] == "joy"
    assert {row["iemocap_emotion"] for row in rows.values()} == {"neutral", "frustrated", "anger", "joy", "excited", "sadness"}


def test_polarity_follows_the_official_mapping():
    assert [iemocap_polarity(a) for a in ("neu", "hap", "exc", "ang", "sad", "fru", "sur")] == [
        "neutral", "positive", "positive", "negative", "negative", "negative", "negative",
    ]


def test_default_context_uses_the_same_speakers_turns_without_names(label_csv):
    row = by_key(read_iemocap(label_csv))["Ses01F_impro01_F001"]
    # F turns only, ordered by turn number; the sur turn F002 is still context
    assert row["context"] == "Excuse me. </s> Yeah. </s> Is there a problem? Well what's the problem?"
    assert row["speaker"] == "F" and row["score"] is None and row["meld_emotion"] is None


def test_dialogue_context_interleaves_both_speakers_by_start_time_with_letters(label_csv):
    row = by_key(read_iemocap(label_csv, context="dialogue"))["Ses01F_impro01_F001"]
    assert row["context"] == "F Excuse me. M Do you have your forms? </s> F Yeah. </s> M Let me see them. F Is there a problem?"


def test_without_features_session_five_is_test_and_validation_is_whole_dialogues(label_csv):
    rows = read_iemocap(label_csv, validation_fraction=0.5, seed=0)
    splits = {}
    for row in rows:
        dialogue = row["id"].split("/", 2)[2].rsplit("_", 1)[0]
        splits.setdefault(dialogue, set()).add(row["split"])
    assert splits["Ses05F_impro03"] == {"test"}
    assert all(len(s) == 1 for s in splits.values())
    assert {next(iter(splits[d])) for d in ("Ses01F_impro01", "Ses02M_script01_1")} == {"train", "validation"}


def test_feature_pickle_decides_splits_and_supplies_frames(label_csv, tmp_path):
    keys = [turn[0] for turn in IEMOCAP_TURNS]
    pickle_path = write_dialogue_feature_pickle(
        str(tmp_path / "iemocap_data_0610.pkl"), [keys[:6], keys[6:10], keys[10:]], video=False
    )
    rows = by_key(read_iemocap(label_csv, pickle_path, trust_pickle=True))
    assert rows["Ses01F_impro01_M002"]["split"] == "validation"
    assert rows["Ses05F_impro03_F000"]["split"] == "test"
    assert rows["Ses01F_impro01_F000"]["acoustic"].shape[1] == 64
    assert rows["Ses01F_impro01_F000"]["visual"] is None


def test_keep_other_emotions_keeps_raw_labels_for_transfer_pools(label_csv):
    rows = by_key(read_iemocap(label_csv, keep_other_emotions=True))
    assert rows["Ses01F_impro01_F002"]["iemocap_emotion"] == "sur"
    assert rows["Ses01F_impro01_F002"]["polarity"] == "negative"


def test_bad_utterance_id_names_the_file_and_column(tmp_path):
    path = write_iemocap_csv(str(tmp_path / "IEMOCAP_all.csv"), [("Session1_utt7", 1.0, "neu", "hi")])
    with pytest.raises(MalformedSourceError, match=r"IEMOCAP_all\.csv \[vid_cid\]: utterance id 'Session1_utt7'"):
        read_iemocap(path)

# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""MOSI/MOSEI pickle layouts (MMSA aligned/unaligned, official UniMSE) and malformed-pickle errors."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from fixtures_data import (
    MSA_UTTERANCES,
    dump_pickle,
    frames,
    mmsa_split,
    true_lengths,
    write_mmsa_pickle,
    write_msa_transcript_csv,
    write_official_msa_pickle,
)

from unimse_hf.data.errors import MalformedSourceError
from unimse_hf.data.features import join_frames
from unimse_hf.data.msa_csv import read_transcript_csv
from unimse_hf.data.msa_pickle import read_mmsa_pickle, read_msa_feature_pickle
from unimse_hf.data.pickles import load_pickle
from unimse_hf.data.schema import rows_to_dataset_dict


def test_unpickling_is_refused_without_trust(tmp_path):
    path = write_mmsa_pickle(str(tmp_path / "unaligned_50.pkl"))
    with pytest.raises(ValueError, match=r"unaligned_50\.pkl: loading a pickle executes code from the file"):
        load_pickle(path)


def test_unaligned_mmsa_pickle_gives_rows_cut_to_their_lengths(tmp_path):
    rows = read_mmsa_pickle(write_mmsa_pickle(str(tmp_path / "unaligned_50.pkl")), "mosi", trust_pickle=True)
    assert [r["split"] for r in rows] == ["train"] * 3 + ["validation", "test"]
    first = rows[0]
    assert (first["id"], first["text"], first["score"], first["polarity"]) == ("mosi/train/vidA_1", "it was great", 2.0, "positive")
    assert first["acoustic"].shape == (2, 5) and first["visual"].shape == (3, 20)
    assert np.array_equal(first["acoustic"], frames(2, 5, seed=1))
    assert rows[2]["id"] == "mosi/train/vid_B_1" and rows[2]["polarity"] == "neutral"


def test_aligned_mmsa_pickle_without_lengths_strips_the_zero_padding(tmp_path):
    rows = read_mmsa_pickle(write_mmsa_pickle(str(tmp_path / "aligned_50.pkl"), aligned=True), "mosei", trust_pickle=True)
    for row, (a_len, v_len) in zip(rows[:3], true_lengths("train")):
        assert row["acoustic"].shape[0] == a_len and row["visual"].shape[0] == v_len


def test_official_unimse_pickle_features_join_a_transcript_csv_by_id_not_position(tmp_path):
    csv_path = write_msa_transcript_csv(str(tmp_path / "label.csv"))
    rows = read_transcript_csv(csv_path, "mosi")
    table = read_msa_feature_pickle(write_official_msa_pickle(str(tmp_path / "mosi_data_0610.pkl")), trust_pickle=True)
    assert join_frames(rows, table, "mosi_data_0610.pkl") == 5
    for split, utterances in MSA_UTTERANCES.items():
        for i, (video, clip, *_), in enumerate(utterances):
            row = next(r for r in rows if r["id"].endswith(f"/{video}_{clip}"))
            a_len, v_len = true_lengths(split)[i]
            # left padding removed, and the frames are this utterance's although the file stores them reversed
            assert np.array_equal(row["acoustic"], frames(a_len, 64, seed=100 + i))
            assert row["visual"].shape == (v_len, 64)


def test_pickle_rows_round_trip_through_parquet_as_float32_matrices(tmp_path):
    rows = read_mmsa_pickle(write_mmsa_pickle(str(tmp_path / "unaligned_50.pkl")), "mosi", trust_pickle=True)
    dataset = rows_to_dataset_dict(rows)
    dataset["train"].to_parquet(str(tmp_path / "train.parquet"))
    from datasets import Dataset

    back = Dataset.from_parquet(str(tmp_path / "train.parquet")).with_format("numpy")
    assert back[0]["acoustic"].dtype == np.float32 and back[0]["acoustic"].shape == (2, 5)
    assert np.array_equal(back[0]["acoustic"], rows[0]["acoustic"])


def test_transcript_and_feature_ids_that_never_match_are_an_error(tmp_path):
    rows = read_transcript_csv(write_msa_transcript_csv(str(tmp_path / "label.csv")), "mosi")
    table = {"other_1": {"acoustic": np.ones((1, 2), np.float32), "visual": None}}
    with pytest.raises(MalformedSourceError, match=r"feats\.pkl: none of the 5 utterances has features"):
        join_frames(rows, table, "feats.pkl")


def _broken(tmp_path, change) -> str:
    data = {split: mmsa_split(split, aligned=False) for split in MSA_UTTERANCES}
    change(data)
    return dump_pickle(data, str(tmp_path / "broken.pkl"))


def test_pickle_missing_a_key_names_the_file_and_the_key(tmp_path):
    path = _broken(tmp_path, lambda d: d["valid"].pop("regression_labels"))
    with pytest.raises(MalformedSourceError, match=r"broken\.pkl \[valid/regression_labels\]: missing key"):
        read_mmsa_pickle(path, "mosi", trust_pickle=True)


def test_pickle_missing_a_split_names_the_file_and_the_split(tmp_path):
    path = _broken(tmp_path, lambda d: d.pop("test"))
    with pytest.raises(MalformedSourceError, match=r"broken\.pkl \[test\]: missing split"):
        read_mmsa_pickle(path, "mosi", trust_pickle=True)


def test_pickle_with_a_wrongly_shaped_feature_array_names_the_key(tmp_path):
    path = _broken(tmp_path, lambda d: d["train"].update(audio=d["train"]["audio"][:, :, 0]))
    with pytest.raises(MalformedSourceError, match=r"broken\.pkl \[train/audio\]: expected utterances x frames x features"):
        read_mmsa_pickle(path, "mosi", trust_pickle=True)


def test_pickle_with_nan_frames_names_the_utterance_and_rows(tmp_path):
    def poison(data):
        data["test"]["vision"][0, 1, :] = np.nan

    path = _broken(tmp_path, poison)
    with pytest.raises(MalformedSourceError, match=r"broken\.pkl \[test/vision\[0\] \(vidD_3\)\]: NaN values in frame rows \[1\]"):
        read_mmsa_pickle(path, "mosi", trust_pickle=True)


def test_pickle_with_a_length_longer_than_its_frames_names_the_key(tmp_path):
    path = _broken(tmp_path, lambda d: d["train"].update(audio_lengths=[99, 3, 4]))
    with pytest.raises(MalformedSourceError, match=r"broken\.pkl \[train/audio\[0\] \(vidA_1\)\]: length 99 outside 0\.\.8"):
        read_mmsa_pickle(path, "mosi", trust_pickle=True)


def _silent_frame(data):
    data["train"]["audio"][0, 0, 0] = -np.inf


def test_minus_infinity_frames_are_refused_naming_the_utterance_and_rows(tmp_path):
    with pytest.raises(MalformedSourceError, match=r"broken\.pkl \[train/audio\[0\] \(vidA_1\)\]: infinite values in frame rows \[0\]"):
        read_mmsa_pickle(_broken(tmp_path, _silent_frame), "mosi", trust_pickle=True)


def test_zero_infinite_features_replaces_minus_infinity_by_zero_as_mmsa_does(tmp_path):
    rows = read_mmsa_pickle(_broken(tmp_path, _silent_frame), "mosi", trust_pickle=True, zero_infinite_features=True)
    assert rows[0]["acoustic"][0, 0] == 0.0


def test_a_file_that_is_not_a_pickle_is_reported_by_name(tmp_path):
    path = tmp_path / "garbage.pkl"
    path.write_bytes(b"not a pickle at all")
    with pytest.raises(ValueError, match=r"garbage\.pkl: not a readable pickle"):
        load_pickle(str(path), trust_pickle=True)


def test_mmsa_pickle_without_transcripts_points_to_the_features_route(tmp_path):
    path = write_official_msa_pickle(str(tmp_path / "mosi_data_0610.pkl"))
    with pytest.raises(MalformedSourceError, match=r"\[train/raw_text\]: no transcripts"):
        read_mmsa_pickle(path, "mosi", trust_pickle=True)


def test_fixture_is_a_plain_pickle_of_numpy_arrays(tmp_path):
    path = write_mmsa_pickle(str(tmp_path / "unaligned_50.pkl"))
    with open(path, "rb") as handle:
        data = pickle.load(handle)
    assert set(data) == {"train", "valid", "test"}
    assert data["train"]["audio"].shape == (3, 8, 5) and data["train"]["id"][0] == "vidA$_$1"

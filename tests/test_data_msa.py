# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""MOSI/MOSEI from the real CSV and .csd files, and from .csd fixtures."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from fixtures_data import (
    MOSEI_FOLDS,
    MOSEI_LABELS,
    MOSI_FOLDS,
    MOSI_LABELS,
    MOSI_LABELS_CSD,
    MOSI_SEGMENTS,
    write_csd,
)

from unimse_hf.data.csd import read_computational_sequence, read_csd_segments
from unimse_hf.data.errors import MalformedSourceError
from unimse_hf.data.msa_csv import (
    attach_transcripts,
    read_opinion_segment_csv,
    read_standard_folds,
    read_transcript_csv,
    read_transcripts,
)
from unimse_hf.data.schema import key_of_id


def split_sizes(rows):
    counts = Counter(row["split"] for row in rows)
    return counts["train"], counts["validation"], counts["test"]


def test_mosi_transcript_csv_gives_its_split_sizes():
    rows = read_transcript_csv(MOSI_LABELS, "mosi")
    assert split_sizes(rows) == (1281, 229, 685)


def test_mosi_segment_labels_with_standard_folds_give_paper_split_sizes():
    rows = read_opinion_segment_csv(MOSI_SEGMENTS, read_standard_folds(MOSI_FOLDS))
    assert split_sizes(rows) == (1284, 229, 686)
    assert all(row["text"] is None for row in rows)


def test_mosei_transcript_csv_gives_its_split_sizes():
    rows = read_transcript_csv(MOSEI_LABELS, "mosei")
    assert split_sizes(rows) == (16274, 1861, 4653)


def test_mosei_transcript_splits_agree_with_standard_folds():
    folds = read_standard_folds(MOSEI_FOLDS)
    by_mode = {row["id"]: row["split"] for row in read_transcript_csv(MOSEI_LABELS, "mosei")}
    by_folds = {row["id"]: row["split"] for row in read_transcript_csv(MOSEI_LABELS, "mosei", folds)}
    assert by_mode == by_folds
    assert len(by_mode) == 22788


def test_standard_folds_read_all_digit_video_ids_as_strings():
    folds = read_standard_folds(MOSEI_FOLDS)
    assert Counter(folds.values()) == {"train": 2249, "validation": 300, "test": 678}
    assert all(isinstance(video, str) for video in folds)


def test_msa_polarity_is_the_sign_of_the_gold_score():
    for row in read_transcript_csv(MOSI_LABELS, "mosi"):
        expected = "positive" if row["score"] > 0 else "negative" if row["score"] < 0 else "neutral"
        assert row["polarity"] == expected
        assert row["meld_emotion"] is None and row["iemocap_emotion"] is None


def test_msa_row_ids_are_split_qualified_source_keys():
    rows = read_transcript_csv(MOSI_LABELS, "mosi")
    first = next(row for row in rows if key_of_id(row["id"]) == "03bSnISJMiM_1")
    assert first["id"] == "mosi/train/03bSnISJMiM_1"
    assert first["text"] == "anyhow it was really good"
    assert first["score"] == 2.4


def test_segment_labels_take_transcripts_by_key_and_leave_the_four_missing_ones_empty():
    rows = read_opinion_segment_csv(MOSI_SEGMENTS, read_standard_folds(MOSI_FOLDS))
    filled = attach_transcripts(rows, read_transcripts(MOSI_LABELS))
    assert filled == 2195
    missing = sorted(key_of_id(row["id"]) for row in rows if row["text"] is None)
    assert missing == ["2WGyTLYerpo_44", "5W7Z1C_fDaE_24", "BioHAh1qJAQ_30", "lXPQBPVc5Cw_30"]


def test_csd_label_reader_returns_all_2199_mosi_segments():
    sequence = read_computational_sequence(MOSI_LABELS_CSD)
    assert sequence.root_name == "Opinion Segment Labels"
    assert sum(len(features) for features, _ in sequence.data.values()) == 2199
    rows = read_csd_segments(MOSI_LABELS_CSD, "mosi", read_standard_folds(MOSI_FOLDS))
    assert len(rows) == 2199
    assert split_sizes(rows) == (1284, 229, 686)


def test_csd_segment_numbers_match_the_official_segment_csv_labels():
    folds = read_standard_folds(MOSI_FOLDS)
    from_csv = {row["id"]: row["score"] for row in read_opinion_segment_csv(MOSI_SEGMENTS, folds)}
    from_csd = {row["id"]: row["score"] for row in read_csd_segments(MOSI_LABELS_CSD, "mosi", folds)}
    assert from_csv.keys() == from_csd.keys()
    assert max(abs(from_csv[k] - from_csd[k]) for k in from_csv) < 1e-6


def _csd_fixture(tmp_path):
    labels = write_csd(
        str(tmp_path / "labels.csd"),
        "Opinion Segment Labels",
        {"vidA": (np.array([[1.5], [-2.0]], np.float32), np.array([[0.0, 2.0], [2.0, 4.0]]))},
    )
    words = np.array([[b"it"], [b"sp"], [b"was"], [b"good"], [b"not"], [b"fun"]])
    spans = np.array([[0.1, 0.4], [0.4, 0.6], [0.6, 0.9], [1.0, 1.5], [2.2, 2.5], [2.6, 3.0]])
    words_path = write_csd(str(tmp_path / "words.csd"), "Words", {"vidA": (words, spans)})
    frames = np.arange(40, dtype=np.float32).reshape(8, 5)
    frame_spans = np.stack([np.arange(8) * 0.5, np.arange(8) * 0.5 + 0.5], axis=1)
    acoustic = write_csd(str(tmp_path / "covarep.csd"), "COVAREP", {"vidA": (frames, frame_spans)})
    return labels, words_path, acoustic


def test_csd_words_and_features_are_cut_per_segment(tmp_path):
    labels, words, acoustic = _csd_fixture(tmp_path)
    rows = read_csd_segments(labels, "mosi", {"vidA": "train"}, words_path=words, acoustic_path=acoustic)
    first, second = rows
    assert (first["id"], first["text"], first["score"]) == ("mosi/train/vidA_1", "it was good", 1.5)
    assert [w["word"] for w in first["word_timestamps"]] == ["it", "was", "good"]
    assert second["word_timestamps"][0] == {"word": "not", "start": pytest.approx(0.2), "end": pytest.approx(0.5)}
    assert first["acoustic"].shape == (4, 5) and second["acoustic"].shape == (4, 5)
    assert second["acoustic"][0, 0] == 20.0
    assert first["visual"] is None


def test_malformed_csd_names_the_file_and_the_missing_key(tmp_path):
    import h5py

    path = str(tmp_path / "broken.csd")
    with h5py.File(path, "w") as handle:
        handle.create_group("Labels/data/vidA").create_dataset("features", data=np.ones((2, 1)))
    with pytest.raises(MalformedSourceError, match=r"broken\.csd \[Labels/data/vidA/intervals\]: missing intervals"):
        read_computational_sequence(path)


def test_transcript_csv_with_an_empty_score_names_the_file_and_column(tmp_path):
    path = tmp_path / "label.csv"
    path.write_text("id,text,label,mode\nv_1,hello,1.0,train\nv_2,bye,,test\n")
    with pytest.raises(MalformedSourceError, match=r"label\.csv \[label\]: empty values in file lines \[3\]"):
        read_transcript_csv(str(path), "mosi")


def test_transcript_csv_without_a_text_column_names_the_column(tmp_path):
    path = tmp_path / "label.csv"
    path.write_text("id,label,mode\nv_1,1.0,train\n")
    with pytest.raises(MalformedSourceError, match=r"label\.csv \[text\]: missing column"):
        read_transcript_csv(str(path), "mosi")


def test_missing_source_file_raises_file_not_found():
    with pytest.raises(FileNotFoundError, match="no_such.csv"):
        read_transcript_csv("no_such.csv", "mosi")

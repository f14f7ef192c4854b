# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Specification of unimse_hf.media on two real CMU-MOSI clips.

Tests that decode media or extract features skip when the media extra (``pip install
"unimse-hf[media]"``) is missing. In a new virtual environment the first librosa call compiles numba
code for about 35 s; later runs reuse numba's cache.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from unimse_hf import media
from unimse_hf.data.schema import COLUMNS

REPO = Path(__file__).resolve().parents[1]
RAW = REPO / "data" / "mosi" / "raw"
WAV = RAW / "03bSnISJMiM_1.wav"
MP4 = RAW / "Oz06ZWiO20M_6.mp4"
WAV_TEXT = "anyhow it was really good"
MP4_TEXT = "and sucker punch is a failer but like a really ambitious weird the interesting idiosyncratic failure"
WAV_SAMPLES = 53_290  # 3.330625 s at 16 kHz
MP4_AUDIO_SAMPLES = 119_049  # its AAC track, resampled to 16 kHz: 7.44 s


@pytest.fixture(scope="module")
def media_extra() -> None:
    for module in ("av", "librosa", "mediapipe", "pocketsphinx"):
        pytest.importorskip(module, reason='needs the media extra: pip install "unimse-hf[media]"')


@pytest.fixture(scope="module")
def wav_features(media_extra: None) -> dict:
    return media.extract_media_features(WAV_TEXT, audio=WAV)


@pytest.fixture(scope="module")
def mp4_features(media_extra: None) -> dict:
    return media.extract_media_features(MP4_TEXT, video=MP4)


@pytest.fixture(params=["wav", "mp4"])
def clip(request: pytest.FixtureRequest) -> tuple[str, dict]:
    if request.param == "wav":
        return WAV_TEXT, request.getfixturevalue("wav_features")
    return MP4_TEXT, request.getfixturevalue("mp4_features")


def test_wav_acoustic_frames_are_100_hz_over_its_3_33_seconds(wav_features: dict) -> None:
    assert wav_features["acoustic_frame_rate"] == 100.0
    assert wav_features["acoustic"].shape == (1 + WAV_SAMPLES // 160, 25)
    assert wav_features["duration"] == pytest.approx(3.330625)


def test_wav_without_video_gives_face_absent_visual_frames_at_30_hz(wav_features: dict) -> None:
    assert wav_features["visual_frame_rate"] == 30.0
    assert wav_features["visual"].shape == (round(3.330625 * 30), 59)
    assert not wav_features["visual"].any()


def test_mp4_visual_frames_are_its_225_frames_at_30_hz(mp4_features: dict) -> None:
    assert mp4_features["visual"].shape == (225, 59)
    assert mp4_features["duration"] == pytest.approx(7.5)


def test_mp4_acoustic_frames_come_from_its_audio_track(mp4_features: dict) -> None:
    assert mp4_features["acoustic"].shape == (1 + MP4_AUDIO_SAMPLES // 160, 25)


def test_mp4_face_is_detected_in_most_frames(mp4_features: dict) -> None:
    face_present = mp4_features["visual"][:, -1]
    assert set(np.unique(face_present)) <= {0.0, 1.0}
    assert face_present.sum() >= 0.9 * 225
    blendshapes = mp4_features["visual"][face_present == 1, :52]
    assert blendshapes.min() >= 0.0 and blendshapes.max() <= 1.0
    assert blendshapes.std(axis=0).max() > 0.05  # the expression changes over the clip


def test_features_are_finite_float32(clip: tuple[str, dict]) -> None:
    _, features = clip
    for name in ("acoustic", "visual"):
        assert features[name].dtype == np.float32
        assert np.isfinite(features[name]).all()


def test_f0_is_zero_when_unvoiced_and_in_range_when_voiced(wav_features: dict) -> None:
    f0 = wav_features["acoustic"][:, media.ACOUSTIC_FEATURE_NAMES.index("f0_hz")]
    voiced = f0[f0 > 0]
    assert 0.2 * len(f0) < len(voiced) < len(f0)
    assert voiced.min() >= 60.0 and voiced.max() <= 500.0


def test_word_spans_are_one_per_word_sorted_and_inside_the_clip(clip: tuple[str, dict]) -> None:
    text, features = clip
    spans = features["word_timestamps"]
    assert len(spans) == len(text.split())
    edges = np.array(spans).ravel()
    assert (np.diff(edges) >= 0).all()
    assert edges[0] >= 0.0 and edges[-1] <= features["duration"]


def test_forced_alignment_leaves_the_wav_pause_outside_the_words(wav_features: dict) -> None:
    (_, anyhow_end), (it_start, _) = wav_features["word_timestamps"][:2]
    assert anyhow_end < 1.0 and it_start > 1.8  # silence from about 0.8 s to 1.85 s


def test_out_of_vocabulary_word_is_aligned_not_spread_proportionally(media_extra: None) -> None:
    waveform = media.decode_audio(MP4)
    spans = media.align_words(waveform, media.SAMPLING_RATE, MP4_TEXT)
    proportional = media.proportional_word_spans(MP4_TEXT, len(waveform) / media.SAMPLING_RATE)
    failer = MP4_TEXT.split().index("failer")
    assert spans[failer].word == "failer"
    assert spans[failer].start == pytest.approx(1.63, abs=0.1)
    assert spans != proportional


def test_unpronounceable_word_gets_the_gap_between_its_neighbours(media_extra: None) -> None:
    waveform = media.decode_audio(WAV)
    spans = media.align_words(waveform, media.SAMPLING_RATE, "Anyhow, -- it WAS really good!")
    assert [span.word for span in spans] == ["Anyhow,", "--", "it", "WAS", "really", "good!"]
    assert spans[1].start == spans[0].end and spans[1].end == spans[2].start


def test_alignment_that_cannot_fit_the_words_falls_back_to_proportional_spans(media_extra: None) -> None:
    waveform = media.decode_audio(WAV)
    transcript = " ".join(["extraordinarily"] * 40)  # far more phones than 3.3 s of speech can hold
    spans = media.align_words(waveform, media.SAMPLING_RATE, transcript)
    assert spans == media.proportional_word_spans(transcript, len(waveform) / media.SAMPLING_RATE)


def test_align_false_spaces_words_by_length(media_extra: None) -> None:
    features = media.extract_media_features(WAV_TEXT, audio=WAV, align=False)
    expected = media.proportional_word_spans(WAV_TEXT, WAV_SAMPLES / 16_000)
    assert features["word_timestamps"] == [(span.start, span.end) for span in expected]


def test_proportional_word_spans_split_the_duration_by_word_length() -> None:
    spans = media.proportional_word_spans("a bbb", 2.0)
    assert spans == [media.WordSpan("a", 0.0, 0.5), media.WordSpan("bbb", 0.5, 2.0)]
    assert media.proportional_word_spans("  ", 2.0) == []


def test_bytes_and_path_decode_to_the_same_waveform(media_extra: None) -> None:
    np.testing.assert_array_equal(media.decode_audio(MP4.read_bytes()), media.decode_audio(MP4))


def test_stereo_array_is_averaged_and_resampled_to_16_khz(media_extra: None) -> None:
    tone = np.sin(2 * np.pi * 220 * np.arange(44_100) / 44_100).astype(np.float32)
    stereo = np.stack([tone, 0.5 * tone], axis=1)  # (samples, channels)
    waveform = media.decode_audio(stereo, 44_100)
    assert waveform.shape == (16_000,) and waveform.dtype == np.float32
    assert np.abs(waveform).max() == pytest.approx(0.75, abs=0.01)


def test_array_audio_needs_its_sampling_rate(media_extra: None) -> None:
    with pytest.raises(ValueError, match="`sampling_rate`"):
        media.extract_media_features(WAV_TEXT, audio=np.zeros(16_000, np.float32))


def test_corrupt_video_raises_value_error_naming_argument_and_file(media_extra: None, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).bytes(50_000))
    with pytest.raises(ValueError, match=r"`video` could not be decoded .*corrupt\.mp4"):
        media.extract_media_features("hello", video=corrupt)


def test_empty_audio_file_raises_value_error_naming_argument_and_file(media_extra: None, tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.touch()
    with pytest.raises(ValueError, match=r"`audio` file is empty .*empty\.wav"):
        media.extract_media_features("hello", audio=empty)


def test_missing_audio_file_raises_file_not_found_naming_argument_and_file(media_extra: None, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"`audio` file not found: .*missing\.wav"):
        media.extract_media_features("hello", audio=tmp_path / "missing.wav")


def test_audio_only_file_given_as_video_raises_value_error(media_extra: None) -> None:
    with pytest.raises(ValueError, match="`video` has no video stream"):
        media.extract_visual_features(WAV)


def test_missing_media_extra_raises_import_error_with_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(ImportError, match=r'pip install "unimse-hf\[media\]"'):
        media.decode_audio(WAV)


def test_face_model_with_wrong_checksum_is_refused(
    media_extra: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    tampered = tmp_path / "face_landmarker.task"
    model = bytearray(media.FACE_LANDMARKER_PATH.read_bytes())
    model[-1] ^= 0xFF
    tampered.write_bytes(bytes(model))
    monkeypatch.setattr(media, "FACE_LANDMARKER_PATH", tampered)
    with pytest.raises(RuntimeError, match="SHA-256"):
        media.extract_visual_features(MP4)


def test_extraction_reports_a_spec_matching_its_features(clip: tuple[str, dict]) -> None:
    _, features = clip
    spec = features["spec"]
    assert spec == media.MediaFeatureSpec()
    assert features["acoustic"].shape[1] == spec.acoustic_dim == len(media.ACOUSTIC_FEATURE_NAMES)
    assert features["visual"].shape[1] == spec.visual_dim == len(media.VISUAL_FEATURE_NAMES)
    assert (features["acoustic_frame_rate"], features["visual_frame_rate"]) == (
        spec.acoustic_frame_rate,
        spec.visual_frame_rate,
    )


def test_spec_round_trips_through_a_dict() -> None:
    spec = media.MediaFeatureSpec(visual_frame_rate=25)
    assert media.MediaFeatureSpec.from_dict(spec.to_dict()) == spec
    assert spec.to_dict()["visual_kind"] == "mediapipe-blendshapes52-pose6-face1"


def test_spec_from_dict_rejects_missing_and_unknown_keys() -> None:
    spec = media.MediaFeatureSpec().to_dict()
    spec.pop("acoustic_kind")
    spec["extractor"] = "opensmile"
    with pytest.raises(ValueError, match=r"missing \['acoustic_kind'\], unknown \['extractor'\]"):
        media.MediaFeatureSpec.from_dict(spec)


def test_prepare_media_row_builds_a_complete_schema_row(media_extra: None, tmp_path: Path) -> None:
    (tmp_path / WAV.name).symlink_to(WAV)
    row = media.prepare_media_row(tmp_path, WAV.stem, WAV_TEXT, 2.4, "train", align=False)
    assert tuple(row) == COLUMNS
    assert row["id"] == "mosi/train/03bSnISJMiM_1"
    assert row["target"] == "positive,2.4,neutral,neutral"
    assert [entry["word"] for entry in row["word_timestamps"]] == WAV_TEXT.split()
    assert row["acoustic"].shape == (334, 25) and row["visual"].shape == (100, 59)


def test_prepare_media_dataset_script_writes_split_parquet_files(
    media_extra: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pandas = pytest.importorskip("pandas")
    labels = tmp_path / "labels.csv"
    labels.write_text(f"id,text,label,mode\n{WAV.stem},{WAV_TEXT},2.4,test\nnot_on_disk,hello,0.0,train\n")
    script = importlib.util.spec_from_file_location(
        "prepare_media_dataset", REPO / "examples" / "prepare_media_dataset.py"
    )
    module = importlib.util.module_from_spec(script)
    script.loader.exec_module(module)
    arguments = [
        "--media_dir",
        str(RAW),
        "--labels",
        str(labels),
        "--output_dir",
        str(tmp_path / "out"),
        "--skip_missing",
    ]
    monkeypatch.setattr(sys, "argv", ["prepare_media_dataset.py", *arguments])
    module.main()
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["README.md", "test.parquet"]
    table = pandas.read_parquet(tmp_path / "out" / "test.parquet")
    assert table["id"].tolist() == ["mosi/test/03bSnISJMiM_1"]
    assert np.stack(table["acoustic"][0]).shape == (334, 25)

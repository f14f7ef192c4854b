"""End to end from raw media: clip + transcript -> pipeline -> parsed prediction, and the CLI."""

import json
import subprocess
import sys

import pytest

pytest.importorskip("av", reason="the media extra (pip install 'unimse-hf[media]') is not installed")
pytest.importorskip("librosa", reason="the media extra is not installed")
pytest.importorskip("mediapipe", reason="the media extra is not installed")

from unimse_hf import PIPELINE_TASK, UniMSEPipeline, UniMSEProcessor  # noqa: E402
from unimse_hf.checkpoint import save_checkpoint  # noqa: E402
from unimse_hf.media import MediaFeatureSpec  # noqa: E402
from unimse_testing import REPO_ROOT, T5_VOCAB_DIR, tiny_model  # noqa: E402

VIDEO = REPO_ROOT / "data" / "mosi" / "raw" / "Oz06ZWiO20M_6.mp4"
AUDIO = REPO_ROOT / "data" / "mosi" / "raw" / "03bSnISJMiM_1.wav"
VIDEO_TEXT = "and sucker punch is a failer but like a really ambitious weird the interesting idiosyncratic failure"
SPEC = MediaFeatureSpec()


@pytest.fixture(scope="module")
def media_checkpoint(tmp_path_factory):
    directory = tmp_path_factory.mktemp("media-ckpt")
    model = tiny_model(acoustic_dim=SPEC.acoustic_dim, visual_dim=SPEC.visual_dim)
    processor = UniMSEProcessor.from_tokenizer_dir(T5_VOCAB_DIR, **SPEC.feature_extractor_kwargs())
    save_checkpoint(model, processor, directory)
    return directory


def test_checkpoint_records_the_extractor(media_checkpoint):
    extractor = json.loads((media_checkpoint / "processor_config.json").read_text())["feature_extractor"]
    assert extractor["acoustic_feature_kind"] == SPEC.acoustic_kind and extractor["visual_feature_kind"] == SPEC.visual_kind
    assert (extractor["acoustic_dim"], extractor["visual_dim"]) == (25, 59)
    assert (extractor["acoustic_frame_rate"], extractor["visual_frame_rate"]) == (100.0, 30.0)


def test_video_clip_and_transcript_give_a_parsed_prediction(media_checkpoint):
    pipe = UniMSEPipeline(model=tiny_model(acoustic_dim=25, visual_dim=59),
                          processor=UniMSEProcessor.from_pretrained(media_checkpoint), task=PIPELINE_TASK)
    result = pipe({"text": VIDEO_TEXT, "video": str(VIDEO)})
    assert result["valid"] and result["polarity"] in ("positive", "negative", "neutral")
    text_only = pipe(VIDEO_TEXT)
    assert text_only["valid"]


def test_media_of_another_kind_is_rejected(tmp_path):
    kwargs = {**SPEC.feature_extractor_kwargs(), "acoustic_feature_kind": "covarep-74"}
    processor = UniMSEProcessor.from_tokenizer_dir(T5_VOCAB_DIR, **kwargs)
    pipe = UniMSEPipeline(model=tiny_model(acoustic_dim=25, visual_dim=59), processor=processor, task=PIPELINE_TASK)
    with pytest.raises(ValueError, match="covarep-74"):
        pipe({"text": "anyhow it was really good", "audio": str(AUDIO)})


def test_cli_predicts_for_an_audio_clip(media_checkpoint):
    result = subprocess.run(
        [sys.executable, "-m", "unimse_hf.cli", "predict", "--model", str(media_checkpoint),
         "--text", "anyhow it was really good", "--audio", str(AUDIO), "--emotion_scores"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    prediction = json.loads(result.stdout)
    assert prediction["valid"] and len(prediction["emotion_scores"]) == 7


@pytest.fixture(scope="module")
def text_only_checkpoint(tmp_path_factory):
    """Like the `make demo` checkpoint: default feature extractor, no media feature kinds recorded."""
    from unimse_testing import tiny_processor

    return save_checkpoint(tiny_model(), tiny_processor(), tmp_path_factory.mktemp("text-only-ckpt"))


@pytest.mark.parametrize(("media", "missing"), [({"audio": str(AUDIO)}, "acoustic"),
                                                ({"video": str(VIDEO)}, "acoustic or visual")])
def test_a_clip_for_a_text_only_checkpoint_is_refused_naming_the_missing_media_features(
        text_only_checkpoint, monkeypatch, media, missing):
    import unimse_hf.media

    from transformers import pipeline

    pipe = pipeline(model=str(text_only_checkpoint), trust_remote_code=True)
    monkeypatch.setattr(unimse_hf.media, "extract_media_features", lambda *a, **k: pytest.fail("clip was decoded"))
    with pytest.raises(ValueError, match="not trained on media features") as error:
        pipe({"text": VIDEO_TEXT, **media})
    assert f"records no {missing} feature kind" in str(error.value)
    assert "acoustic_feature_kind='unspecified'" in str(error.value)
    assert pipe(VIDEO_TEXT)["valid"]  # the transcript alone still works

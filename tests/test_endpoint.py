"""The Inference Endpoints handler: batches, limits, media only as uploaded bytes, refusals that keep it serving."""

import base64
import io
import json
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from unimse_hf import UniMSEProcessor
from unimse_hf.checkpoint import save_checkpoint
from unimse_testing import REPO_ROOT, T5_VOCAB_DIR, tiny_model, tiny_processor

AUDIO = REPO_ROOT / "data" / "mosi" / "raw" / "03bSnISJMiM_1.wav"  # 3.3 s
GOOD = {"inputs": "it was really good", "parameters": {"max_new_tokens": 32}}


def _handler_class(directory: Path):
    """`EndpointHandler` from the `handler.py` of a saved checkpoint folder."""
    sys.path.insert(0, str(directory))
    try:
        from handler import EndpointHandler
    finally:
        sys.path.remove(str(directory))
    return EndpointHandler


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return save_checkpoint(tiny_model(), tiny_processor(), tmp_path_factory.mktemp("endpoint-ckpt"))


@pytest.fixture(scope="module")
def handler(checkpoint):
    return _handler_class(checkpoint)(str(checkpoint), max_payload_bytes=4096)


@pytest.fixture(scope="module")
def media_checkpoint(tmp_path_factory) -> Path:
    pytest.importorskip("av", reason="the media extra (pip install 'unimse-hf[media]') is not installed")
    from unimse_hf.media import MediaFeatureSpec

    spec = MediaFeatureSpec()
    processor = UniMSEProcessor.from_tokenizer_dir(T5_VOCAB_DIR, **spec.feature_extractor_kwargs())
    model = tiny_model(acoustic_dim=spec.acoustic_dim, visual_dim=spec.visual_dim)
    return save_checkpoint(model, processor, tmp_path_factory.mktemp("endpoint-media-ckpt"))


def test_a_list_of_inputs_gives_one_result_per_input_in_order(handler):
    rng = np.random.default_rng(0)
    inputs = ["it was really good", {"text": "that was a long and rather terrible evening",
                                     "acoustic": rng.standard_normal((12, 8)).tolist()}, "fine"]
    results = handler({"inputs": inputs})
    assert results == [handler.pipeline(item) for item in inputs]


def test_one_input_gives_a_list_of_one_result(handler):
    assert handler({"inputs": "fine"}) == [handler.pipeline("fine")]


def _local_path_payload(path: str) -> dict:
    return {"inputs": {"text": "anyhow it was really good", "audio": path}}


BAD_PAYLOADS = {
    "local path": _local_path_payload(str(AUDIO)),
    "payload over the limit": {"inputs": "good " * 1000},
    "max_new_tokens over the limit": {"inputs": "good", "parameters": {"max_new_tokens": 65}},
    "num_beams over the limit": {"inputs": "good", "parameters": {"num_beams": 5}},
    "unknown parameters": {"inputs": "good", "parameters": {"max_length": 5, "temperature": 0.7}},
    "client-chosen batch size": {"inputs": ["good", "bad"], "parameters": {"batch_size": 1000}},
    "a list under text": {"inputs": {"text": ["good", "bad", "fine"]}},
    "too many inputs": {"inputs": ["good"] * 65},
}
EXPECTED_MESSAGE = {
    "local path": "file paths are not accepted",
    "payload over the limit": "limit is 4096 bytes",
    "max_new_tokens over the limit": "max_new_tokens` is 65; this endpoint allows at most 64",
    "num_beams over the limit": "num_beams` is 5; this endpoint allows at most 4",
    "unknown parameters": "['max_length', 'temperature']",
    "client-chosen batch size": "['batch_size']",
    "a list under text": "list of inputs",
    "too many inputs": "the limit is 64",
}


@pytest.mark.parametrize("case", list(BAD_PAYLOADS))
def test_a_bad_request_is_refused_and_the_next_good_one_is_served(handler, case):
    with pytest.raises((ValueError, TypeError)) as error:
        handler(BAD_PAYLOADS[case])
    assert EXPECTED_MESSAGE[case] in str(error.value)
    result = handler(GOOD)
    assert len(result) == 1 and result[0]["valid"]


def test_a_local_path_gets_the_same_message_whether_or_not_it_exists(handler, tmp_path):
    messages = []
    for path in (str(AUDIO), str(tmp_path / "missing.wav"), "/etc/passwd", "../../secret.mp4"):
        with pytest.raises((ValueError, TypeError)) as error:
            handler(_local_path_payload(path))
        messages.append(str(error.value))
    assert len(set(messages)) == 1 and str(AUDIO) not in messages[0]


def test_limits_come_from_handler_config_json_and_constructor_arguments_win(tmp_path):
    directory = save_checkpoint(tiny_model(), tiny_processor(), tmp_path / "ckpt")
    (directory / "handler_config.json").write_text(json.dumps({"max_new_tokens": 8, "max_clip_seconds": 5}))
    handler_class = _handler_class(directory)
    from_file = handler_class(str(directory))
    assert (from_file.limits.max_new_tokens, from_file.limits.max_clip_seconds) == (8, 5)
    with pytest.raises(ValueError, match="at most 8"):
        from_file({"inputs": "good", "parameters": {"max_new_tokens": 9}})
    assert handler_class(str(directory), max_new_tokens=16).limits.max_new_tokens == 16


@pytest.mark.parametrize(("content", "named"), [({"max_tokens": 8}, "max_tokens"), ({"max_inputs": 0}, "max_inputs"),
                                                ({"media_folders": ["/no/such/folder"]}, "/no/such/folder")])
def test_a_bad_handler_config_json_is_refused_naming_the_problem(tmp_path, content, named):
    directory = save_checkpoint(tiny_model(), tiny_processor(), tmp_path / "ckpt")
    (directory / "handler_config.json").write_text(json.dumps(content))
    with pytest.raises((ValueError, TypeError)) as error:
        _handler_class(directory)(str(directory))
    assert named in str(error.value)


def test_a_processor_that_disagrees_with_the_model_is_refused_when_the_handler_is_built(tmp_path):
    processor = UniMSEProcessor.from_tokenizer_dir(T5_VOCAB_DIR, acoustic_dim=9, visual_dim=6)
    directory = save_checkpoint(tiny_model(), processor, tmp_path / "ckpt")
    with pytest.raises(ValueError, match="acoustic_dim=9.*acoustic_dim=8"):
        _handler_class(directory)(str(directory))


def _short_wav_bytes(seconds: float = 0.5, sampling_rate: int = 16_000) -> bytes:
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(int(seconds * sampling_rate)) / sampling_rate)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav_file:
        wav_file.setnchannels(1)
        wav_file.setsampwidth(2)
        wav_file.setframerate(sampling_rate)
        wav_file.writeframes((tone * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


def test_base64_audio_is_served(media_checkpoint):
    handler = _handler_class(media_checkpoint)(str(media_checkpoint))
    audio = base64.b64encode(_short_wav_bytes()).decode("ascii")
    result = handler({"inputs": {"text": "fine", "audio": f"data:audio/wav;base64,{audio}"}})
    assert len(result) == 1 and result[0]["valid"]


def test_a_clip_over_the_limit_is_refused_before_it_is_decoded(media_checkpoint, monkeypatch):
    import unimse_hf.media

    handler = _handler_class(media_checkpoint)(str(media_checkpoint), max_clip_seconds=2)
    monkeypatch.setattr(unimse_hf.media, "extract_media_features", lambda *a, **k: pytest.fail("clip was decoded"))
    audio = base64.b64encode(AUDIO.read_bytes()).decode("ascii")
    with pytest.raises(ValueError, match=r"3\.3 s long; the limit is 2 s"):
        handler({"inputs": {"text": "anyhow it was really good", "audio": audio}})


def test_a_path_inside_the_servers_media_folders_is_read(media_checkpoint):
    handler = _handler_class(media_checkpoint)(str(media_checkpoint), max_clip_seconds=2,
                                               media_folders=[str(AUDIO.parent)])
    with pytest.raises(ValueError, match="3.3 s long"):  # the clip was opened: it is too long
        handler(_local_path_payload(str(AUDIO)))
    with pytest.raises(ValueError, match="paths are accepted only inside the server's media folders"):
        handler(_local_path_payload(str(REPO_ROOT / "README.md")))

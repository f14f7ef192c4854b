"""The multimodal-sentiment-analysis pipeline, the saved checkpoint layout and the endpoint handler."""

import json

import numpy as np
import pytest

from unimse_hf import PIPELINE_TASK, UniMSEPipeline
from unimse_hf.checkpoint import HUB_MODULES, save_checkpoint
from unimse_hf.labels import MELD_EMOTIONS, parse_universal_label
from unimse_testing import run_without_package, tiny_model, tiny_processor


@pytest.fixture(scope="module")
def pipe():
    return UniMSEPipeline(model=tiny_model(), processor=tiny_processor(), task=PIPELINE_TASK)


def test_text_alone_gives_a_parsed_prediction(pipe):
    result = pipe("it was really good")
    assert set(result) >= {"score", "polarity", "emotion", "label"}
    assert result["valid"] and parse_universal_label(result["label"]).valid  # structured decoding by default


def test_text_with_precomputed_features_uses_them(pipe):
    rng = np.random.default_rng(0)
    inputs = {"text": "it was really good", "acoustic": rng.standard_normal((30, 8)), "visual": rng.standard_normal((9, 6))}
    result = pipe(inputs, return_emotion_scores=True)
    scores = result["emotion_scores"]
    assert list(scores) == list(MELD_EMOTIONS) and abs(sum(scores.values()) - 1) < 1e-5


def test_unknown_input_keys_are_rejected(pipe):
    with pytest.raises(ValueError, match="unknown keys"):
        pipe({"text": "hi", "audo": "clip.wav"})


def test_saved_checkpoint_holds_code_processor_pipeline_and_handler(tmp_path):
    save_checkpoint(tiny_model(), tiny_processor(), tmp_path, model_card="---\nlibrary_name: transformers\n---\n# card\n")
    for name in HUB_MODULES + ("model.safetensors", "processor_config.json", "generation_config.json", "handler.py", "README.md"):
        assert (tmp_path / name).is_file(), name
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["custom_pipelines"][PIPELINE_TASK]["impl"] == "pipeline_unimse.UniMSEPipeline"


def test_pipeline_and_endpoint_handler_load_without_the_package(tmp_path):
    model, processor = tiny_model(), tiny_processor()
    save_checkpoint(model, processor, tmp_path)
    expected = UniMSEPipeline(model=model, processor=processor, task=PIPELINE_TASK)("it was really good")
    code = f"""
import json, sys
from transformers import pipeline
sys.path.insert(0, {str(tmp_path)!r})
from handler import EndpointHandler
pipe = pipeline(model={str(tmp_path)!r}, trust_remote_code=True)
handler = EndpointHandler({str(tmp_path)!r})
print(json.dumps({{"task": pipe.task, "pipe": pipe("it was really good"),
                   "handler": handler({{"inputs": "it was really good", "parameters": {{"max_new_tokens": 32}}}})}}))
"""
    result = run_without_package(code, cwd=tmp_path, env_extra={"HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["task"] == PIPELINE_TASK
    assert report["pipe"] == expected
    assert report["handler"] == [expected]


def test_a_processor_prefix_other_than_the_models_is_reported():
    from transformers.testing_utils import CaptureLogger

    import unimse_hf.pipeline_unimse as pipeline_module

    processor = tiny_processor()
    processor.task_prefix = "mosi: "
    try:
        with CaptureLogger(pipeline_module.logger) as captured:
            UniMSEPipeline(model=tiny_model(), processor=processor, task=PIPELINE_TASK)
    finally:
        processor.task_prefix = "sst2 sentence: "
    assert "mosi: " in captured.out and "task_prefix" in captured.out

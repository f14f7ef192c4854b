"""The multimodal-sentiment-analysis pipeline: predictions, batching, emotion scores, parameters and pairing."""

import json

import numpy as np
import pytest
import torch

from unimse_hf import PIPELINE_TASK, UniMSEPipeline
from unimse_hf.checkpoint import HUB_MODULES, save_checkpoint
from unimse_hf.labels import MELD_EMOTIONS, parse_universal_label
from unimse_hf.processing_unimse import UniMSEProcessor
from unimse_testing import T5_VOCAB_DIR, run_without_package, tiny_model, tiny_processor


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


def _mixed_inputs() -> list:
    """Inputs of different text lengths and modalities: text only, acoustic only, visual only, both token-aligned."""
    rng = np.random.default_rng(1)
    return [
        "it was really good",
        {"text": "a much longer sentence about how the whole movie was a terrible failure in the end",
         "acoustic": rng.standard_normal((30, 8))},
        {"text": "meh", "visual": rng.standard_normal((9, 6))},
        {"text": "really nice one", "acoustic": rng.standard_normal((20, 8)), "visual": rng.standard_normal((7, 6)),
         "word_timestamps": [(0.0, 0.05), (0.05, 0.1), (0.1, 0.2)]},
        "ok",
    ]


def _strings(result: dict) -> dict:
    return {key: value for key, value in result.items() if key != "emotion_scores"}


def test_batched_predictions_equal_one_by_one_for_mixed_lengths_and_modalities(pipe):
    inputs = _mixed_inputs()
    one_by_one = [pipe(item, return_emotion_scores=True) for item in inputs]
    batched = pipe(inputs, batch_size=4, return_emotion_scores=True)
    assert [_strings(r) for r in batched] == [_strings(r) for r in one_by_one]
    for single, batch in zip(one_by_one, batched):
        assert batch["emotion_scores"] == pytest.approx(single["emotion_scores"], abs=1e-5)


def test_each_batch_is_one_generate_call_on_all_its_rows(pipe, monkeypatch):
    calls = []
    original = pipe.model.generate

    def spy(*args, **kwargs):
        calls.append(kwargs["input_ids"].shape[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(pipe.model, "generate", spy)
    results = pipe(_mixed_inputs(), batch_size=4)
    assert calls == [4, 1] and len(results) == 5


def _per_candidate_emotion_scores(model, model_inputs: dict, label: str, structured: bool = True) -> dict:
    """The model re-run on the inputs repeated once per MELD candidate; with `structured`, each token's softmax
    runs over the grammar's choices at its position (the model's grammar-constrained loss), else over the whole
    vocabulary with the EOS after the emotion."""
    processor = tiny_processor()
    parsed = parse_universal_label(label)
    prefix = f"{parsed.polarity},{parsed.text.split(',')[1].strip()},"
    labels = processor.tokenizer([prefix + emotion for emotion in MELD_EMOTIONS], return_tensors="pt", padding=True,
                                 add_special_tokens=not structured)
    label_ids = labels["input_ids"].masked_fill(labels["attention_mask"] == 0, -100)
    repeated = {k: v.repeat_interleave(len(MELD_EMOTIONS), dim=0) for k, v in model_inputs.items()}
    with torch.no_grad():
        if structured:
            candidates = processor.label_constraint().label_candidate_ids(label_ids)
            out = model(**repeated, labels=label_ids, label_candidate_ids=candidates)
            log_probs = torch.log_softmax(out.logits.float(), dim=-1)
            picked = (candidates == label_ids.clamp(min=0).unsqueeze(-1)).float().argmax(-1)
            token_log_probs = log_probs.gather(-1, picked.unsqueeze(-1)).squeeze(-1)
            probabilities = torch.softmax((token_log_probs * (label_ids != -100)).sum(dim=1), dim=0)
            return {emotion: float(p) for emotion, p in zip(MELD_EMOTIONS, probabilities)}
        logits = model(**repeated, labels=label_ids).logits
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    token_log_probs = log_probs.gather(-1, label_ids.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    probabilities = torch.softmax((token_log_probs * (label_ids != -100)).sum(dim=1), dim=0)
    return {emotion: float(p) for emotion, p in zip(MELD_EMOTIONS, probabilities)}


def test_batched_emotion_scores_equal_the_per_candidate_computation(pipe):
    inputs = _mixed_inputs()
    for item, result in zip(inputs, pipe(inputs, batch_size=5, return_emotion_scores=True)):
        item = {"text": item} if isinstance(item, str) else item
        model_inputs = {k: v for k, v in pipe.preprocess(item).items() if v.shape[1] > 0}
        expected = _per_candidate_emotion_scores(pipe.model, model_inputs, result["label"])
        assert result["emotion_scores"] == pytest.approx(expected, abs=1e-5)


def test_emotion_scores_without_structured_decoding_are_normalised_over_the_whole_vocabulary(pipe):
    # A random model decoding freely emits no parseable label, so the free-decoding scores are taken on the
    # labels that structured decoding generated.
    model_inputs = {k: v for k, v in pipe.preprocess({"text": "it was really good"}).items() if v.shape[1] > 0}
    label = pipe("it was really good")["label"]
    sequences = pipe.processor.tokenizer([label], return_tensors="pt").input_ids
    sequences = torch.cat([torch.zeros_like(sequences[:, :1]), sequences], dim=1)  # the decoder start token
    with torch.no_grad():
        encoder_outputs = pipe.model.encode(**model_inputs)
        free = pipe._emotion_probabilities(encoder_outputs, model_inputs["attention_mask"], sequences, structured=False)
        constrained = pipe._emotion_probabilities(encoder_outputs, model_inputs["attention_mask"], sequences, structured=True)
    expected_free = _per_candidate_emotion_scores(pipe.model, model_inputs, label, structured=False)
    expected_constrained = _per_candidate_emotion_scores(pipe.model, model_inputs, label, structured=True)
    assert free[0].tolist() == pytest.approx(list(expected_free.values()), abs=1e-5)
    assert constrained[0].tolist() == pytest.approx(list(expected_constrained.values()), abs=1e-5)
    assert not torch.allclose(free, constrained, atol=1e-3)


def test_emotion_scores_reuse_the_encoder_pass_of_generation(pipe, monkeypatch):
    calls = []
    original = pipe.model.encode
    monkeypatch.setattr(pipe.model, "encode", lambda *a, **k: calls.append(1) or original(*a, **k))
    pipe(_mixed_inputs(), batch_size=5, return_emotion_scores=True)
    assert len(calls) == 1


def test_a_list_under_text_is_refused_as_not_one_input(pipe):
    with pytest.raises(TypeError, match=r"inputs\['text'\].*list of inputs"):
        pipe({"text": ["good", "bad", "fine"]})


@pytest.mark.parametrize("parameters", [{"max_length": 5}, {"temperature": 0.7, "do_sample": True}])
def test_unknown_parameters_are_refused_naming_them(pipe, parameters):
    with pytest.raises(ValueError, match="unknown pipeline parameters") as error:
        pipe("it was good", **parameters)
    assert all(name in str(error.value) for name in parameters)


def test_unknown_parameters_are_refused_when_the_pipeline_is_built():
    with pytest.raises(ValueError, match="max_length"):
        UniMSEPipeline(model=tiny_model(), processor=tiny_processor(), task=PIPELINE_TASK, max_length=5)


@pytest.mark.parametrize(("name", "value"), [("max_new_tokens", 0), ("max_new_tokens", -3), ("num_beams", 1.5),
                                             ("return_emotion_scores", "yes"), ("max_clip_seconds", float("inf"))])
def test_bad_parameter_values_are_refused_naming_the_parameter(pipe, name, value):
    with pytest.raises(ValueError, match=name):
        pipe("it was good", **{name: value})


@pytest.mark.parametrize("field", ["acoustic_dim", "visual_dim"])
def test_a_processor_whose_feature_size_differs_from_the_models_is_refused(field):
    sizes = {"acoustic_dim": 8, "visual_dim": 6}
    processor = UniMSEProcessor.from_tokenizer_dir(T5_VOCAB_DIR, **{**sizes, field: sizes[field] + 1})
    with pytest.raises(ValueError, match=field) as error:
        UniMSEPipeline(model=tiny_model(), processor=processor, task=PIPELINE_TASK)
    assert f"{field}={sizes[field] + 1}" in str(error.value) and f"{field}={sizes[field]}" in str(error.value)

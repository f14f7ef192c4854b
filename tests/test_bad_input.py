"""Bad input to the processor and the model raises ValueError/TypeError naming the argument."""

import numpy as np
import pytest
import torch

from unimse_testing import TINY, tiny_model, tiny_processor

RNG = np.random.default_rng(0)
A = lambda n: RNG.standard_normal((n, TINY["acoustic_dim"])).astype(np.float32)  # noqa: E731


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        (dict(text="hi", acoustic=[np.zeros((4, 5))]), ValueError, "acoustic"),  # wrong feature dimension
        (dict(text="hi", visual=[np.zeros((4, 7))]), ValueError, "visual"),
        (dict(text=["a", "b"], acoustic=[A(3)] * 3), ValueError, "acoustic"),  # batch mismatch with text
        (dict(text="hi", acoustic=[np.full((3, 8), np.nan)]), ValueError, "acoustic"),  # NaN
        (dict(text="hi", visual=[np.full((3, 6), np.inf)]), ValueError, "visual"),  # inf
        (dict(text="", acoustic=[A(3)]), ValueError, "text"),  # empty text
        (dict(text="   "), ValueError, "text"),
        (dict(text=None), ValueError, "text"),
        (dict(text=[3]), TypeError, "text"),
        (dict(text="it was good", acoustic=[A(20)], word_timestamps=[[(0.1, 0.2), (0.0, 0.1), (0.2, 0.3)]]), ValueError, "word_timestamps"),
        (dict(text="it was good", acoustic=[A(20)], word_timestamps=[[(0.1, 0.05), (0.1, 0.2), (0.2, 0.3)]]), ValueError, "word_timestamps"),
        (dict(text="it was good", acoustic=[A(20)], word_timestamps=[[(-1.0, 0.1), (0.1, 0.2), (0.2, 0.3)]]), ValueError, "word_timestamps"),
        (dict(text="it was good", acoustic=[A(20)], word_timestamps=[[(0.0, 0.1), (0.1, 0.2)]]), ValueError, "word_timestamps"),
        (dict(text="hi", acoustic=[np.array([["a"] * 8])]), TypeError, "acoustic"),
        (dict(text="hi", labels=["positive,1.0,joy"]), ValueError, "labels"),
        (dict(text=["a", "b"], labels=["positive,1.0,joy,excited"]), ValueError, "labels"),
    ],
)
def test_processor_rejects_bad_input_naming_the_argument(kwargs, error, name):
    with pytest.raises(error, match=name):
        tiny_processor()(**kwargs)


def _inputs():
    g = torch.Generator().manual_seed(0)
    return dict(input_ids=torch.randint(3, 100, (2, 5), generator=g),
                acoustic_features=torch.randn(2, 4, TINY["acoustic_dim"], generator=g),
                visual_features=torch.randn(2, 3, TINY["visual_dim"], generator=g))


@pytest.mark.parametrize(
    "change, error, name",
    [
        (dict(acoustic_features=torch.randn(2, 4, 5)), ValueError, "acoustic_features"),  # wrong dimension
        (dict(visual_features=torch.randn(3, 3, TINY["visual_dim"])), ValueError, "visual_features"),  # batch
        (dict(acoustic_attention_mask=torch.ones(2, 7)), ValueError, "acoustic_attention_mask"),  # mask length
        (dict(visual_attention_mask=torch.ones(2, 3), visual_features=None), ValueError, "visual_attention_mask"),
        (dict(acoustic_features=torch.full((2, 4, TINY["acoustic_dim"]), float("nan"))), ValueError, "acoustic_features"),
        (dict(visual_features=torch.full((2, 3, TINY["visual_dim"]), float("inf"))), ValueError, "visual_features"),
        (dict(acoustic_features=torch.ones(2, 4, TINY["acoustic_dim"], dtype=torch.long)), TypeError, "acoustic_features"),
        (dict(attention_mask=torch.ones(2, 9)), ValueError, "attention_mask"),
    ],
)
def test_model_rejects_bad_input_naming_the_argument(change, error, name):
    model = tiny_model()
    inputs = {**_inputs(), **change}
    with pytest.raises(error, match=name):
        model(**inputs, decoder_input_ids=torch.zeros(2, 1, dtype=torch.long))
    with pytest.raises(error, match=name):
        model.generate(**inputs, max_new_tokens=2)


# ---------------------------------------------------------------------------------- pipeline and handler

@pytest.fixture(scope="module")
def pipe():
    from unimse_hf import PIPELINE_TASK, UniMSEPipeline
    from unimse_testing import tiny_processor

    return UniMSEPipeline(model=tiny_model(), processor=tiny_processor(), task=PIPELINE_TASK)


@pytest.mark.parametrize(
    "inputs, error, name",
    [
        (42, TypeError, "inputs"),
        ({"text": "hi", "audo": "clip.wav"}, ValueError, "inputs"),
        ({"text": ""}, ValueError, "text"),
        ({"text": "hi", "acoustic": np.zeros((4, 3))}, ValueError, "acoustic"),
        ({"text": "hi", "visual": np.full((4, TINY["visual_dim"]), np.nan)}, ValueError, "visual"),
        ({"text": "a b", "acoustic": np.zeros((4, TINY["acoustic_dim"])), "word_timestamps": [(0.2, 0.1), (0.2, 0.3)]},
         ValueError, "word_timestamps"),
    ],
)
def test_pipeline_rejects_bad_input_naming_the_argument(pipe, inputs, error, name):
    with pytest.raises(error, match=name):
        pipe(inputs)


def test_pipeline_refuses_a_model_that_is_not_unimse():
    from transformers import T5Config, T5ForConditionalGeneration

    from unimse_hf import PIPELINE_TASK, UniMSEPipeline
    from unimse_testing import tiny_processor

    t5 = T5ForConditionalGeneration(T5Config(vocab_size=32128, d_model=16, d_kv=4, d_ff=16, num_layers=1, num_heads=2))
    with pytest.raises(ValueError, match="model"):
        UniMSEPipeline(model=t5, processor=tiny_processor(), task=PIPELINE_TASK)


@pytest.mark.parametrize(
    "payload, name",
    [({"text": "hi"}, "inputs"), ("hi", "data"), ({"inputs": "hi", "parameters": [1]}, "parameters"),
     ({"inputs": []}, "inputs")],
)
def test_endpoint_handler_rejects_bad_payloads_naming_the_field(pipe, payload, name):
    from unimse_hf.endpoint_handler import EndpointHandler, HandlerLimits

    handler = EndpointHandler.__new__(EndpointHandler)  # the handler of a loaded checkpoint, with default limits
    handler.pipeline, handler.limits = pipe, HandlerLimits()
    with pytest.raises(ValueError, match=name):
        handler(payload)


# ---------------------------------------------------------------------------------- checkpoints

def test_cli_refuses_a_plain_t5_checkpoint(tmp_path):
    from transformers import T5Config, T5ForConditionalGeneration

    from unimse_hf.cli import main

    T5ForConditionalGeneration(T5Config(vocab_size=32128, d_model=16, d_kv=4, d_ff=16, num_layers=1,
                                        num_heads=2)).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="--model"):
        main(["predict", "--model", str(tmp_path), "--text", "hi"])


def test_weights_load_from_safetensors_only_unless_opted_in(tmp_path):
    from unimse_hf import UniMSEForConditionalGeneration

    model = tiny_model()
    model.save_pretrained(tmp_path)  # transformers 5 writes safetensors only: make a pickle-based .bin by hand
    (tmp_path / "model.safetensors").unlink()
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises((OSError, ValueError), match="safetensors"):
        UniMSEForConditionalGeneration.from_pretrained(tmp_path)
    loaded = UniMSEForConditionalGeneration.from_pretrained(tmp_path, use_safetensors=False)
    assert torch.equal(loaded.shared.weight, model.shared.weight)


def test_every_torch_load_in_the_package_is_weights_only():
    import ast
    from pathlib import Path

    import unimse_hf

    for path in Path(unimse_hf.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "load" \
                    and getattr(node.func.value, "id", None) == "torch":
                keywords = {k.arg: k.value for k in node.keywords}
                assert "weights_only" in keywords and getattr(keywords["weights_only"], "value", None) is True, path


# ---------------------------------------------------------------------------------- data and training scripts

def test_unknown_dataset_name_is_rejected_and_nothing_is_written(tmp_path):
    import sys

    sys.path.insert(0, "examples")
    from prepare_data import main as prepare_main

    with pytest.raises((ValueError, SystemExit)):
        prepare_main(["--dataset", "cmu-mosi", "--source", "data/mosi/label.csv", "--output_dir", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_missing_source_file_raises_file_not_found_and_nothing_is_written(tmp_path):
    from unimse_hf.data import load_corpus

    with pytest.raises(FileNotFoundError, match="nope.csv"):
        load_corpus("mosi", str(tmp_path / "nope.csv"))
    assert list(tmp_path.iterdir()) == []


def test_pickle_source_without_trust_is_refused(tmp_path):
    import pickle

    from unimse_hf.data import load_pickle

    path = tmp_path / "features.pkl"
    path.write_bytes(pickle.dumps({"train": {}}))
    with pytest.raises(ValueError, match="trust_pickle"):
        load_pickle(str(path), trust_pickle=False)


@pytest.mark.parametrize(
    "field, value",
    [("polarity", "happy"), ("meld_emotion", "bored"), ("iemocap_emotion", "calm"), ("score", float("nan"))],
)
def test_malformed_universal_label_fields_are_rejected(field, value):
    from unimse_hf.labels import UniversalLabel

    slots = {"polarity": "positive", "score": 1.0, "meld_emotion": "joy", "iemocap_emotion": "excited", field: value}
    with pytest.raises(ValueError, match=field):
        UniversalLabel(**slots)


@pytest.mark.parametrize(
    "extra, name",
    [(["--optimizer_recipe", "sgd"], "optimizer_recipe"), (["--generation_max_new_tokens", "0"], "generation_max_new_tokens"),
     (["--dataset_name", "x/y"], "dataset_dir")],
)
def test_train_script_rejects_bad_arguments_before_writing_anything(tmp_path, capsys, extra, name):
    import sys

    sys.path.insert(0, "examples")
    import train_unimse

    argv = ["--tiny", "--dataset_dir", str(tmp_path / "data"), "--output_dir", str(tmp_path / "run"), "--do_train",
            "--use_cpu", *extra]
    with pytest.raises((ValueError, SystemExit)) as raised:  # argparse choices exit with a usage error
        train_unimse.main(argv)
    assert name in str(raised.value) + capsys.readouterr().err
    assert not (tmp_path / "run").exists()

"""ONNX Runtime export: the graphs reproduce PyTorch's logits and greedy labels; bad checkpoints are refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from unimse_testing import random_frames, tiny_model, tiny_processor

from unimse_hf import export_onnx as export_module
from unimse_hf.export_onnx import GRAPH_FILES, MANIFEST_NAME, export_onnx, main
from unimse_hf.onnx_predictor import UniMSEOnnxPredictor

pytestmark = pytest.mark.usefixtures("single_thread_torch")

TEXTS = ["it was a really wonderful film", "meh", "i did not like the ending at all"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A tiny random UniMSE checkpoint with its processor."""
    directory = tmp_path_factory.mktemp("checkpoint")
    tiny_model(seed=3).save_pretrained(directory)
    tiny_processor().save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def exported(checkpoint, tmp_path_factory) -> Path:
    """The checkpoint exported through the command line, with int8 graphs."""
    output = tmp_path_factory.mktemp("exports") / "onnx"
    main(["--model", str(checkpoint), "--output_dir", str(output), "--int8"])
    return output


@pytest.fixture(scope="module")
def predictor(exported) -> UniMSEOnnxPredictor:
    return UniMSEOnnxPredictor.from_pretrained(exported)


@pytest.fixture(scope="module")
def model():
    return tiny_model(seed=3)


def assert_matches_pytorch(predictor: UniMSEOnnxPredictor, model, inputs) -> None:
    result = predictor.generate(inputs, output_logits=True)
    with torch.no_grad():
        reference = model.generate(**inputs, **tiny_processor().generation_kwargs(), do_sample=False, num_beams=1,
                                   output_logits=True, return_dict_in_generate=True)
    assert torch.equal(result.sequences, reference.sequences)
    assert len(result.logits) == len(reference.logits)
    for step, (ort_logits, torch_logits) in enumerate(zip(result.logits, reference.logits)):
        difference = float((torch.from_numpy(ort_logits) - torch_logits).abs().max())
        assert difference <= 1e-4, f"step {step}: logits differ by {difference}"


def test_onnx_matches_pytorch_with_both_modalities(predictor, model):
    rng = np.random.default_rng(0)
    inputs = tiny_processor()(TEXTS, acoustic=random_frames(rng, [12, 3, 7], 8), visual=random_frames(rng, [5, 9, 2], 6))
    assert_matches_pytorch(predictor, model, inputs)


def test_onnx_matches_pytorch_text_only(predictor, model):
    inputs = tiny_processor()(TEXTS)
    assert "acoustic_features" not in inputs
    assert_matches_pytorch(predictor, model, inputs)


@pytest.mark.parametrize("batch_size", [1, 7])
def test_onnx_matches_pytorch_at_batch_sizes_other_than_the_traced_one(predictor, model, batch_size):
    rng = np.random.default_rng(batch_size)
    texts = [TEXTS[i % len(TEXTS)] + f" take {i}" for i in range(batch_size)]
    lengths = [int(n) for n in rng.integers(1, 12, size=batch_size)]
    inputs = tiny_processor()(texts, acoustic=random_frames(rng, lengths, 8), visual=random_frames(rng, lengths[::-1], 6))
    assert_matches_pytorch(predictor, model, inputs)


def test_onnx_matches_pytorch_with_token_aligned_inputs(predictor, model):
    rng = np.random.default_rng(1)
    inputs = tiny_processor()(TEXTS, acoustic=random_frames(rng, [30, 4, 18], 8), visual=random_frames(rng, [9, 2, 6], 6),
                              align_to_tokens=True)
    assert inputs["acoustic_features"].shape[1] == inputs["input_ids"].shape[1]
    assert_matches_pytorch(predictor, model, inputs)


def test_onnx_matches_pytorch_when_some_samples_lack_a_modality(predictor, model):
    rng = np.random.default_rng(2)
    acoustic = random_frames(rng, [6, 4], 8) + [None]
    visual = [None] + random_frames(rng, [3, 5], 6)
    assert_matches_pytorch(predictor, model, tiny_processor()(TEXTS, acoustic=acoustic, visual=visual))


def test_predictor_call_returns_the_labels_pytorch_generates(predictor, model):
    rng = np.random.default_rng(3)
    acoustic = random_frames(rng, [8, 2, 5], 8)
    processor = tiny_processor()
    with torch.no_grad():
        sequences = model.generate(**processor(TEXTS, acoustic=acoustic), **processor.generation_kwargs())
    assert predictor(TEXTS, acoustic=acoustic) == processor.post_process_generation(sequences)


def test_int8_export_holds_quantised_graphs_that_decode_to_valid_labels(exported):
    import onnx

    for role, name in GRAPH_FILES["int8"].items():
        graph = onnx.load(str(exported / name), load_external_data=False).graph
        assert any(node.op_type == "MatMulInteger" for node in graph.node), role
        assert (exported / name).stat().st_size < (exported / GRAPH_FILES["fp32"][role]).stat().st_size
    labels = UniMSEOnnxPredictor.from_pretrained(exported, quantize="int8")(TEXTS)
    assert all(label.valid for label in labels)


def test_int8_export_keeps_the_lm_head_in_fp32_and_quantises_the_other_projections(exported, model):
    import onnx

    vocab_size = model.config.vocab_size
    manifest = json.loads((exported / MANIFEST_NAME).read_text())
    assert manifest["int8_fp32_nodes"]
    for role in ("decoder", "decoder_with_past"):
        graph = onnx.load(str(exported / GRAPH_FILES["int8"][role]), load_external_data=False).graph
        weights = {init.name: list(init.dims) for init in graph.initializer}
        float_heads = [node for node in graph.node if node.op_type == "MatMul"
                       and any(vocab_size in weights.get(name, []) for name in node.input)]
        assert [node.name for node in float_heads] == manifest["int8_fp32_nodes"], role
        assert sum(node.op_type == "MatMulInteger" for node in graph.node) >= 2 * model.config.num_decoder_layers, role


def test_export_refuses_graphs_that_do_not_reproduce_the_model(checkpoint, tmp_path, monkeypatch):
    traced_forward = export_module.UniMSETraceableModalityEncoder.forward

    def wrong_vectors(self, features, mask, return_token_states=False):
        encoding = traced_forward(self, features, mask, return_token_states)
        encoding.vector = encoding.vector + 1.0
        return encoding

    monkeypatch.setattr(export_module.UniMSETraceableModalityEncoder, "forward", wrong_vectors)
    output = tmp_path / "onnx"
    with pytest.raises(RuntimeError, match="do not reproduce the PyTorch model"):
        export_onnx(checkpoint, output)
    assert list(tmp_path.iterdir()) == []


def _no_config(directory: Path, checkpoint: Path) -> None:
    directory.mkdir()
    (directory / "model.safetensors").write_bytes((checkpoint / "model.safetensors").read_bytes())


def _t5_checkpoint(directory: Path, checkpoint: Path) -> None:
    from transformers import T5Config

    T5Config(d_model=32, d_ff=64, num_layers=1, num_heads=2, d_kv=16).save_pretrained(directory)
    tiny_processor().save_pretrained(directory)


def _no_processor(directory: Path, checkpoint: Path) -> None:
    directory.mkdir()
    for name in ("config.json", "model.safetensors"):
        (directory / name).write_bytes((checkpoint / name).read_bytes())


@pytest.mark.parametrize(
    "make_checkpoint, message",
    [
        (_no_config, "has no config.json"),
        (_t5_checkpoint, "is a 't5' checkpoint; only UniMSE"),
        (_no_processor, "has no processor_config.json"),
    ],
    ids=["no-config", "not-unimse", "no-processor"],
)
def test_export_refuses_a_checkpoint_it_cannot_use(checkpoint, tmp_path, make_checkpoint, message):
    source = tmp_path / "source"
    make_checkpoint(source, checkpoint)
    before = sorted(path.name for path in source.iterdir())
    output = tmp_path / "onnx"
    with pytest.raises(ValueError, match=message) as error:
        export_onnx(source, output)
    assert "`--model`" in str(error.value)
    assert not output.exists()
    assert sorted(path.name for path in source.iterdir()) == before


def test_export_refuses_a_non_empty_output_dir(checkpoint, tmp_path):
    output = tmp_path / "onnx"
    output.mkdir()
    (output / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="`--output_dir`"):
        export_onnx(checkpoint, output)
    assert [path.name for path in output.iterdir()] == ["keep.txt"]
    assert (output / "keep.txt").read_text() == "mine"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["onnx"]


def _manifest_only(exported: Path, directory: Path, keep_int8: bool) -> Path:
    directory.mkdir()
    manifest = json.loads((exported / MANIFEST_NAME).read_text())
    if not keep_int8:
        manifest["graphs"].pop("int8")
    (directory / MANIFEST_NAME).write_text(json.dumps(manifest))
    return directory


@pytest.mark.parametrize(
    "build, quantize, message",
    [
        (lambda exported, directory: directory, None, "has no onnx_export.json"),
        (lambda exported, directory: _manifest_only(exported, directory, keep_int8=True), "int4", "`quantize`"),
        (lambda exported, directory: _manifest_only(exported, directory, keep_int8=False), "int8", "has no int8 graphs"),
    ],
    ids=["not-an-export", "unknown-precision", "no-int8-graphs"],
)
def test_predictor_refuses_what_it_cannot_load(exported, tmp_path, build, quantize, message):
    directory = build(exported, tmp_path / "export")
    with pytest.raises(ValueError, match=message):
        UniMSEOnnxPredictor.from_pretrained(directory, quantize=quantize)

"""PyTorch dynamic int8 quantisation of UniMSE's linear layers, selectable at load."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear

from unimse_testing import random_frames, tiny_model, tiny_processor

from unimse_hf.quantization import load_quantized, quantize_model

pytestmark = pytest.mark.usefixtures("single_thread_torch")

TEXTS = ["it was a really wonderful film", "meh"]


def _inputs():
    rng = np.random.default_rng(0)
    return tiny_processor()(TEXTS, acoustic=random_frames(rng, [7, 3], 8), visual=random_frames(rng, [4, 6], 6))


def test_quantize_model_replaces_every_linear_layer_by_a_dynamic_int8_one():
    model = tiny_model()
    linear_names = {name for name, module in model.named_modules() if type(module) is nn.Linear}
    quantized = quantize_model(model, "int8")
    quantized_names = {name for name, module in quantized.named_modules() if isinstance(module, DynamicQuantizedLinear)}
    assert quantized_names == linear_names
    assert "lm_head" in quantized_names and "encoder_fusion.0.down_proj" in quantized_names
    assert not any(type(module) is nn.Linear for module in quantized.modules())


def test_quantize_model_leaves_the_original_model_unchanged():
    model = tiny_model()
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    quantize_model(model, "int8")
    assert all(type(module) is not DynamicQuantizedLinear for module in model.modules())
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[name], after[name]) for name in before)


def test_int8_logits_stay_close_to_fp32():
    model = tiny_model()
    quantized = quantize_model(model, "int8")
    inputs = _inputs()
    decoder_input_ids = torch.zeros((len(TEXTS), 1), dtype=torch.long)
    with torch.no_grad():
        reference = model(**inputs, decoder_input_ids=decoder_input_ids).logits
        logits = quantized(**inputs, decoder_input_ids=decoder_input_ids).logits
    relative = float((logits - reference).abs().max() / reference.abs().max())
    assert 0 < relative < 0.05


def test_int8_model_generates_parseable_labels_under_the_grammar():
    quantized = quantize_model(tiny_model(), "int8")
    processor = tiny_processor()
    with torch.no_grad():
        sequences = quantized.generate(**_inputs(), **processor.generation_kwargs())
    assert all(label.valid for label in processor.post_process_generation(sequences))


def test_load_quantized_equals_quantising_the_loaded_checkpoint(tmp_path):
    model = tiny_model(seed=5)
    model.save_pretrained(tmp_path)
    loaded = load_quantized(tmp_path)
    inputs = _inputs()
    decoder_input_ids = torch.zeros((len(TEXTS), 1), dtype=torch.long)
    with torch.no_grad():
        expected = quantize_model(model, "int8")(**inputs, decoder_input_ids=decoder_input_ids).logits
        logits = loaded(**inputs, decoder_input_ids=decoder_input_ids).logits
    assert isinstance(loaded.lm_head, DynamicQuantizedLinear)
    torch.testing.assert_close(logits, expected, rtol=0, atol=0)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: quantize_model(tiny_model(), "int4"), ValueError, "`quantize`"),
        (lambda: quantize_model(nn.Linear(2, 2), "int8"), TypeError, "`model`"),
        (lambda: quantize_model(tiny_model().to(torch.float64), "int8"), ValueError, "`model` must be a float32"),
        (lambda: load_quantized("unused-path", quantize="fp8"), ValueError, "`quantize`"),
    ],
    ids=["unknown-mode", "not-unimse", "not-float32", "load-unknown-mode"],
)
def test_quantization_refuses_bad_arguments(call, error, message):
    with pytest.raises(error, match=message):
        call()

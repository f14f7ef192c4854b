"""Loading a broken UniMSE checkpoint is refused at load, naming what is wrong, and changes nothing on disk."""

import hashlib
import json
from pathlib import Path

import pytest
import torch
from huggingface_hub.errors import StrictDataclassError
from safetensors.torch import load_file, save_file

from unimse_hf import UniMSEForConditionalGeneration
from unimse_testing import tiny_model

pytestmark = pytest.mark.usefixtures("single_thread_torch")


def _edited_weights(edit):
    """A corruption that loads `model.safetensors`, applies `edit` to the tensor dict and saves it again."""
    def corrupt(folder: Path) -> None:
        weights = load_file(str(folder / "model.safetensors"))
        edit(weights)
        save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return corrupt


def _without(key: str):
    return _edited_weights(lambda weights: weights.pop(key))


def _reshaped(key: str):
    return _edited_weights(lambda weights: weights.update(
        {key: torch.zeros(weights[key].shape[0] + 1, *weights[key].shape[1:])}))


def _truncated(fraction: float):
    def corrupt(folder: Path) -> None:
        path = folder / "model.safetensors"
        path.write_bytes(path.read_bytes()[: int(path.stat().st_size * fraction)])
    return corrupt


def _garbage_weights(folder: Path) -> None:
    (folder / "model.safetensors").write_bytes(b"\xff" * 64)


def _config_field(field: str, value):
    def corrupt(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text())
        config[field] = value
        (folder / "config.json").write_text(json.dumps(config))
    return corrupt


def _config_not_json(folder: Path) -> None:
    (folder / "config.json").write_text("{not json")


def _only_pickle_weights(folder: Path) -> None:
    weights = load_file(str(folder / "model.safetensors"))
    torch.save(weights, folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()


CASES = {
    "missing encoder adapter weight": (_without("encoder_fusion.0.down_proj.weight"), ValueError,
                                       "encoder_fusion.0.down_proj.weight"),
    "missing decoder adapter weight": (_without("decoder_fusion.1.out_proj.bias"), ValueError,
                                       "decoder_fusion.1.out_proj.bias"),
    "missing acoustic LSTM weight": (_without("acoustic_encoder.rnn.weight_hh_l0"), ValueError,
                                     "acoustic_encoder.rnn.weight_hh_l0"),
    "missing visual projection": (_without("visual_encoder.output_projection.weight"), ValueError,
                                  "visual_encoder.output_projection.weight"),
    "missing contrastive projection": (_without("encoder_contrastive_head.text_projection.weight"), ValueError,
                                       "encoder_contrastive_head.text_projection.weight"),
    "missing T5 weight": (_without("encoder.block.1.layer.1.DenseReluDense.wi.weight"), ValueError,
                          "encoder.block.1.layer.1.DenseReluDense.wi.weight"),
    "weight of another shape": (_reshaped("acoustic_encoder.rnn.weight_ih_l0"), ValueError,
                                "acoustic_encoder.rnn.weight_ih_l0"),
    "truncated weights": (_truncated(0.5), OSError, "could not be read"),
    "weights cut inside the header": (_truncated(0.001), OSError, "could not be read"),
    "garbage weights file": (_garbage_weights, OSError, "could not be read"),
    "unknown activation in config": (_config_field("pmf_activation", "swish"), StrictDataclassError, "pmf_activation"),
    "negative acoustic_dim in config": (_config_field("acoustic_dim", -4), StrictDataclassError, "acoustic_dim"),
    "cl_layer outside the encoder": (_config_field("cl_layer", 7), StrictDataclassError, "cl_layer"),
    "mask probability of one": (_config_field("modality_mask_prob", 1.0), StrictDataclassError, "modality_mask_prob"),
    "config.json not JSON": (_config_not_json, OSError, "config.json"),
    "pickle weights only": (_only_pickle_weights, OSError, "safetensors"),
}


def _fingerprint(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("checkpoint")
    tiny_model().save_pretrained(folder)
    return folder


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_broken_checkpoint_is_refused_at_load_naming_the_problem(case, saved_model, tmp_path):
    corrupt, error, message = CASES[case]
    folder = tmp_path / "checkpoint"
    folder.mkdir()
    for path in saved_model.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    corrupt(folder)
    before = _fingerprint(folder)
    with pytest.raises(error, match=message):
        UniMSEForConditionalGeneration.from_pretrained(folder)
    assert _fingerprint(folder) == before


def test_a_complete_checkpoint_loads_with_the_same_weights(saved_model):
    loaded = UniMSEForConditionalGeneration.from_pretrained(saved_model)
    reference = tiny_model()
    for name, value in reference.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name

"""UniMSEConfig: defaults reproduce the paper's T5-base setup; invalid values name the field."""

import json

import pytest
from huggingface_hub.errors import StrictDataclassError

from unimse_hf import UniMSEConfig


def test_defaults_are_the_papers_t5_base_setup():
    config = UniMSEConfig()
    assert (config.d_model, config.d_ff, config.num_layers, config.num_heads, config.vocab_size) == (768, 3072, 12, 12, 32128)
    assert config.pmf_encoder_blocks == [9, 10, 11] and config.pmf_decoder_blocks == [9, 10, 11]
    assert config.trainable_t5_blocks == [10, 11]
    assert (config.acoustic_dim, config.visual_dim, config.modality_hidden, config.modality_out) == (64, 64, 32, 32)
    assert (config.pmf_bottleneck, config.pmf_activation, config.cl_proj_dim, config.cl_temperature) == (64, "sigmoid", 30, 0.1)
    assert config.decoder_start_token_id == 0 and config.fusion_granularity == "utterance"
    assert config.modality_mask_prob == 0.0


def test_pmf_layers_beyond_depth_are_clamped_like_the_official_code():
    config = UniMSEConfig(num_layers=2, pmf_layers=3)
    assert config.pmf_encoder_blocks == [0, 1]


def test_pmf_in_decoder_false_leaves_the_decoder_without_adapters():
    assert UniMSEConfig(pmf_in_decoder=False).pmf_decoder_blocks == []


def test_config_round_trips_through_save_pretrained(tmp_path):
    config = UniMSEConfig(num_layers=4, acoustic_dim=25, missing_modality="learned", cl_weight_ta=0.2)
    config.save_pretrained(tmp_path)
    loaded = UniMSEConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == config.to_dict()


@pytest.mark.parametrize(
    "field, value",
    [
        ("acoustic_dim", 0),
        ("visual_dim", -3),
        ("pmf_activation", "swish"),
        ("missing_modality", "mean"),
        ("cl_temperature", 0.0),
        ("modality_dropout", 1.5),
        ("cl_text_pooling", "max"),
        ("cl_layer", 40),
        ("trainable_t5_blocks", [12]),
        ("pmf_in_decoder", "yes"),
        ("cl_weight_tv", -1.0),
    ],
)
def test_invalid_value_raises_a_validation_error_naming_the_field(field, value):
    with pytest.raises(StrictDataclassError, match=field):
        UniMSEConfig(**{field: value})


@pytest.mark.parametrize(
    "field, value",
    [("pmf_bottleneck", "x"), ("pmf_bottleneck", 0), ("pmf_activation", "swish"), ("cl_enabled", 1),
     ("modality_mask_prob", 1.0), ("fusion_granularity", "word"), ("cl_temperature", float("nan"))],
)
def test_assigning_an_invalid_value_raises_naming_the_field(field, value):
    config = UniMSEConfig()
    before = getattr(config, field)
    with pytest.raises(StrictDataclassError, match=field):
        setattr(config, field, value)
    assert getattr(config, field) == before


def test_an_old_config_with_task_prefix_loads_without_keeping_it(tmp_path):
    UniMSEConfig().save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**saved, "task_prefix": "sst2 sentence: "}))
    assert not hasattr(UniMSEConfig.from_pretrained(tmp_path), "task_prefix")

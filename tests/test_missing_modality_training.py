"""Training for missing modalities: `modality_mask_prob` hides modalities per sample, only in training mode,
at the configured rate. (What it buys, accuracy with a modality removed, is measured by
`benchmarks/bench_missing_modality.py`: one seed trains three models, longer than a test should take.)"""

from __future__ import annotations

import pytest
import torch

from unimse_testing import TINY, tiny_model

pytestmark = pytest.mark.usefixtures("single_thread_torch")

SAMPLES = 4000


def modality_inputs(samples: int = SAMPLES, frames: int = 3, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random acoustic and visual frames for `samples` samples (every frame valid)."""
    generator = torch.Generator().manual_seed(seed)
    return {"acoustic_features": torch.randn(samples, frames, TINY["acoustic_dim"], generator=generator),
            "visual_features": torch.randn(samples, frames, TINY["visual_dim"], generator=generator)}


def hidden_fractions(model, samples: int = SAMPLES) -> tuple[float, float, float]:
    """Fractions of samples encoded as missing: acoustic, visual, both."""
    acoustic, visual = model.encode_modalities(**modality_inputs(samples), batch_size=samples)
    hidden_a, hidden_v = ~acoustic.present, ~visual.present
    return hidden_a.float().mean().item(), hidden_v.float().mean().item(), (hidden_a & hidden_v).float().mean().item()


@pytest.mark.parametrize("probability", [0.25, 0.5])
def test_training_mode_hides_each_modality_at_the_configured_rate_independently(probability):
    model = tiny_model(modality_mask_prob=probability).train()
    torch.manual_seed(1)
    acoustic, visual, both = hidden_fractions(model)
    tolerance = 4 * (probability * (1 - probability) / SAMPLES) ** 0.5  # four binomial standard deviations
    assert acoustic == pytest.approx(probability, abs=tolerance)
    assert visual == pytest.approx(probability, abs=tolerance)
    assert both == pytest.approx(probability**2, abs=tolerance)


def test_eval_mode_never_hides_a_modality():
    model = tiny_model(modality_mask_prob=0.5).eval()
    assert hidden_fractions(model) == (0.0, 0.0, 0.0)


def test_zero_mask_probability_hides_nothing_in_training_mode():
    model = tiny_model(modality_mask_prob=0.0).train()
    assert hidden_fractions(model) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize("policy", ["zeros", "learned"])
def test_hidden_samples_get_the_missing_vector_and_kept_samples_their_own(policy):
    model = tiny_model(modality_mask_prob=0.5, modality_dropout=0.0, missing_modality=policy)
    if policy == "learned":
        with torch.no_grad():
            model.acoustic_encoder.missing_embedding.normal_()
    inputs = modality_inputs(64)
    reference, _ = model.eval().encode_modalities(**inputs, batch_size=64)
    torch.manual_seed(2)
    masked, _ = model.train().encode_modalities(**inputs, batch_size=64)
    hidden = ~masked.present
    assert 0 < int(hidden.sum()) < 64
    missing = model.acoustic_encoder.missing_embedding.detach()
    torch.testing.assert_close(masked.vector[hidden], missing.expand(int(hidden.sum()), -1))
    torch.testing.assert_close(masked.vector[~hidden], reference.vector[~hidden])
    assert masked.pooled_sequence[hidden].abs().max() == 0


def test_token_level_fusion_hides_every_token_state_of_a_hidden_sample():
    model = tiny_model(modality_mask_prob=0.5, modality_dropout=0.0, fusion_granularity="token").train()
    inputs = modality_inputs(64, frames=5)
    torch.manual_seed(3)
    acoustic, _ = model.encode_modalities(**inputs, batch_size=64, text_length=5)
    hidden = ~acoustic.present
    assert 0 < int(hidden.sum()) < 64
    assert acoustic.token_states[hidden].abs().max() == 0
    assert acoustic.token_states[~hidden].abs().amin(dim=-1).gt(0).all()


def test_the_hidden_samples_follow_the_torch_seed():
    model = tiny_model(modality_mask_prob=0.5).train()
    inputs = modality_inputs(256)
    torch.manual_seed(4)
    first, _ = model.encode_modalities(**inputs, batch_size=256)
    torch.manual_seed(4)
    second, _ = model.encode_modalities(**inputs, batch_size=256)
    assert torch.equal(first.present, second.present)


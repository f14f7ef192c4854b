"""The converted official checkpoints reproduce the official implementation's outputs.

The reference vectors are read from `../shared/data/official_vectors` (both cases, 34 MB) where it exists,
else from the `tiny` case shipped in `tests/data/official_tiny` (its README says how it was derived: the
logits are kept at 8,103 vocabulary rows). The `tiny_infonce` tests need the shared folder and say so when
they skip.
"""

import functools

import pytest
import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList

from unimse_hf.convert_official_checkpoint import convert_official_checkpoint, convert_official_state_dict, main
from unimse_testing import OFFICIAL_VECTORS_DIR

pytestmark = pytest.mark.skipif(not OFFICIAL_VECTORS_DIR.is_dir(),
                                reason=f"official test vectors not found at {OFFICIAL_VECTORS_DIR}")
CASES = {"tiny": False, "tiny_infonce": True}  # case -> official InfoNCE on (converted with the quirk flags)


def _require_case(name: str) -> None:
    if not (OFFICIAL_VECTORS_DIR / name).is_dir():
        pytest.skip(f"the {name!r} official case is not in {OFFICIAL_VECTORS_DIR} (only the shared folder has it)")


def _reference_logits(out, io) -> tuple[torch.Tensor, torch.Tensor]:
    """(ours, official) logits: all of them, or the vocabulary rows a shipped case keeps."""
    if "logits" in io:
        return out.logits, io["logits"]
    rows = io["grad_row_ids.T5_encoder.t5_model.shared.weight"]
    return out.logits[..., rows], io["logits_at_vocab_ids"]


@functools.lru_cache(maxsize=None)
def _load_case(name: str) -> dict:
    from safetensors.torch import load_file

    _require_case(name)
    torch.manual_seed(0)
    io = load_file(str(OFFICIAL_VECTORS_DIR / name / "io.safetensors"))
    model = convert_official_checkpoint(OFFICIAL_VECTORS_DIR / name / "weights.safetensors", official_quirks=CASES[name])
    acoustic, visual = io["acoustic"].transpose(0, 1), io["visual"].transpose(0, 1)  # official inputs are time-major
    inputs = dict(
        input_ids=io["input_ids"], attention_mask=io["attention_mask"],
        acoustic_features=acoustic, acoustic_attention_mask=torch.arange(acoustic.shape[1])[None] < io["a_len"][:, None],
        visual_features=visual, visual_attention_mask=torch.arange(visual.shape[1])[None] < io["v_len"][:, None],
    )
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    outputs = model(**inputs, labels=io["labels"])
    return dict(name=name, io=io, model=model, inputs=inputs, outputs=outputs)


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    return _load_case(request.param)


def test_official_logits_and_lm_loss(case):
    out, io = case["outputs"], case["io"]
    ours, official = _reference_logits(out, io)
    assert (ours - official).abs().max() <= 1e-4
    assert abs(out.lm_loss.item() - io["lm_loss"].item()) <= 1e-5


def test_official_utterance_vectors_and_encoder_state(case):
    out, io = case["outputs"], case["io"]
    assert (out.acoustic_vector - io["acoustic_vec"]).abs().max() <= 1e-5
    assert (out.visual_vector - io["visual_vec"]).abs().max() <= 1e-5
    assert (out.encoder_last_hidden_state - io["encoder_last_hidden_state"]).abs().max() <= 1e-4


def test_official_decoder_input_ids_are_the_shifted_labels(case):
    assert torch.equal(case["model"]._shift_right(case["io"]["labels"]), case["io"]["decoder_input_ids"])


# transformers 5 fills a `None` field of a passed GenerationConfig from `model.generation_config` (which has
# eos_token_id=1); an empty list is what really switches stopping at EOS off.
WITHOUT_EOS = dict(max_length=13, eos_token_id=[], pad_token_id=0, decoder_start_token_id=0)


class _ForceEosAtStep(LogitsProcessor):
    """Makes EOS the only sensible next token once the sequence has `length` tokens."""

    def __init__(self, length: int) -> None:
        self.length = length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if input_ids.shape[1] == self.length:
            scores = scores.clone()
            scores[:, 1] = scores.max() + 1e4
        return scores


def test_official_greedy_generations(case):
    model, inputs, io = case["model"], case["inputs"], case["io"]
    assert torch.equal(model.generate(**inputs, max_length=20), io["generate_default"])
    assert torch.equal(model.generate(**inputs, generation_config=GenerationConfig(**WITHOUT_EOS)), io["generate_12"])


def test_the_no_eos_generation_config_really_disables_stopping_at_eos(case):
    model, inputs = case["model"], case["inputs"]
    forced = LogitsProcessorList([_ForceEosAtStep(3)])
    stopped = model.generate(**inputs, max_length=13, logits_processor=forced)
    assert stopped.shape[1] == 4  # with EOS on, the forced EOS ends every sequence
    continued = model.generate(**inputs, generation_config=GenerationConfig(**WITHOUT_EOS), logits_processor=forced)
    assert continued.shape[1] == 13 and bool((continued[:, 3] == 1).all())


def test_official_default_has_no_contrastive_terms():
    out = _load_case("tiny")["outputs"]
    assert out.contrastive_loss_ta is None and out.contrastive_loss_tv is None


def test_official_contrastive_losses_with_quirk_flags():
    case = _load_case("tiny_infonce")
    out, io = case["outputs"], case["io"]
    assert abs(out.contrastive_loss_ta.item() - io["ta_loss"].item()) <= 1e-5
    assert abs(out.contrastive_loss_tv.item() - io["tv_loss"].item()) <= 1e-5


def test_official_encoder_side_contrastive_terms_alone():
    """Without the decoder-side InfoNCE (our default, B3) the terms equal the official encoder parts."""
    from safetensors.torch import load_file

    case = _load_case("tiny_infonce")
    weights = load_file(str(OFFICIAL_VECTORS_DIR / "tiny_infonce" / "weights.safetensors"))
    encoder_only = {k: v for k, v in weights.items() if "decoder.info_nce" not in k}
    model = convert_official_checkpoint(encoder_only, official_quirks=True, cl_in_decoder=False)
    out = model(**case["inputs"], labels=case["io"]["labels"])
    assert abs(out.contrastive_loss_ta.item() - case["io"]["ta_loss_encoder"].item()) <= 1e-5
    assert abs(out.contrastive_loss_tv.item() - case["io"]["tv_loss_encoder"].item()) <= 1e-5


def test_official_parameter_gradients(case):
    model, out, io = case["model"], case["outputs"], case["io"]
    total = out.loss  # the whole objective: LM + 0.5 InfoNCE(t, a) + 0.5 InfoNCE(t, v) when InfoNCE is on
    if out.contrastive_loss_ta is not None:
        expected = out.lm_loss + 0.5 * out.contrastive_loss_ta + 0.5 * out.contrastive_loss_tv
        assert abs(total.item() - expected.item()) <= 1e-6
    assert abs(total.item() - io["total_loss"].item()) <= 1e-5
    model.zero_grad()
    total.backward(retain_graph=True)
    reference = convert_official_state_dict({k[len("grad."):]: v for k, v in io.items() if k.startswith("grad.")}, model.config)
    parameters = dict(model.named_parameters())
    assert len(reference) == len(parameters) - 1  # every parameter but the tied embedding
    for name, expected in reference.items():
        limit = 1e-4 * expected.abs().max().item() + 1e-9
        assert (parameters[name].grad - expected).abs().max().item() <= limit, name
    key = "T5_encoder.t5_model.shared.weight"
    embedding = parameters["shared.weight"].grad
    rows = io[f"grad_row_ids.{key}"]
    assert (embedding[rows] - io[f"grad_rows.{key}"]).abs().max() <= 1e-4 * io[f"grad_rows.{key}"].abs().max() + 1e-9
    assert abs(embedding.double().norm().item() / io[f"grad_full_l2.{key}"].item() - 1) <= 1e-4
    assert abs(embedding.double().abs().sum().item() / io[f"grad_full_abssum.{key}"].item() - 1) <= 1e-4


def test_official_converter_cli_writes_a_loadable_checkpoint(tmp_path):
    from unimse_hf import UniMSEForConditionalGeneration, UniMSEProcessor

    main(["--official_state_dict", str(OFFICIAL_VECTORS_DIR / "tiny" / "weights.safetensors"),
          "--output_dir", str(tmp_path), "--tokenizer_dir", "data/t5"])
    model = UniMSEForConditionalGeneration.from_pretrained(tmp_path)
    processor = UniMSEProcessor.from_pretrained(tmp_path)
    assert model.config.d_model == 64 and model.config.pmf_encoder_blocks == [0, 1] and not model.config.cl_enabled
    assert processor.feature_extractor.acoustic_dim == 64

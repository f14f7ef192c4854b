"""UniMSEForConditionalGeneration: the PMF and LSTM formulas, T5 equivalence, generation."""

import pytest
import torch
from transformers import T5Config, T5ForConditionalGeneration

from unimse_hf import UniMSEForConditionalGeneration
from unimse_hf.modeling_unimse import (UniMSEFusionAdapter, UniMSEModalityEncoder, info_nce_loss,
                                       supervised_contrastive_loss)
from unimse_testing import TINY, tiny_config, tiny_model


def _batch(seed=0, batch=3, text=7, frames=(10, 6)):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 1000, (batch, text), generator=g)
    mask = torch.ones(batch, text, dtype=torch.long)
    mask[1, text - 2:] = 0
    acoustic = torch.randn(batch, frames[0], TINY["acoustic_dim"], generator=g)
    acoustic_mask = torch.ones(batch, frames[0], dtype=torch.long)
    acoustic_mask[0, 4:] = 0
    visual = torch.randn(batch, frames[1], TINY["visual_dim"], generator=g)
    visual_mask = torch.ones(batch, frames[1], dtype=torch.long)
    visual_mask[2, 3:] = 0
    return dict(input_ids=ids, attention_mask=mask, acoustic_features=acoustic, acoustic_attention_mask=acoustic_mask,
                visual_features=visual, visual_attention_mask=visual_mask)


def test_pmf_adapter_matches_the_reference_formula():
    torch.manual_seed(0)
    adapter = UniMSEFusionAdapter(tiny_config())
    for p in adapter.parameters():
        torch.nn.init.normal_(p, std=0.2)
    h, v, a = torch.randn(2, 5, 32), torch.randn(2, 16), torch.randn(2, 16)
    z = torch.cat([h, v[:, None].expand(2, 5, 16), a[:, None].expand(2, 5, 16)], dim=-1)  # visual before acoustic
    W_d, b_d = adapter.down_proj.weight, adapter.down_proj.bias
    W_u, b_u = adapter.up_proj.weight, adapter.up_proj.bias
    W_p, b_p = adapter.out_proj.weight, adapter.out_proj.bias
    u = z + torch.sigmoid(z @ W_d.T + b_d) @ W_u.T + b_u
    expected = u @ W_p.T + b_p
    torch.testing.assert_close(adapter(h, v, a), expected, atol=1e-6, rtol=1e-6)


def test_lstm_utterance_vector_matches_a_hand_written_recurrence():
    config = tiny_config(modality_dropout=0.0)
    torch.manual_seed(1)
    encoder = UniMSEModalityEncoder(8, config).eval()
    x = torch.randn(2, 6, 8)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    out = encoder(x, mask)
    rnn = encoder.rnn
    W_ih, W_hh, b = rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0 + rnn.bias_hh_l0
    for i, length in enumerate([4, 6]):
        h = c = torch.zeros(16)
        outputs = []
        for t in range(length):
            gates = W_ih @ x[i, t] + W_hh @ h + b
            i_g, f_g, g_g, o_g = gates.chunk(4)  # PyTorch order: input, forget, cell, output
            c = torch.sigmoid(f_g) * c + torch.sigmoid(i_g) * torch.tanh(g_g)
            h = torch.sigmoid(o_g) * torch.tanh(c)
            outputs.append(h)
        vector = encoder.output_projection.weight @ h + encoder.output_projection.bias
        torch.testing.assert_close(out.vector[i], vector, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(out.pooled_sequence[i], torch.stack(outputs).mean(0), atol=1e-5, rtol=1e-5)


def test_lstm_reads_valid_frames_in_order_whatever_the_mask_layout():
    torch.manual_seed(2)
    encoder = UniMSEModalityEncoder(8, tiny_config()).eval()
    frames = torch.randn(1, 3, 8)
    scattered = torch.zeros(1, 7, 8)
    scattered[0, [1, 4, 5]] = frames[0]
    left = encoder(frames, torch.ones(1, 3, dtype=torch.long))
    right = encoder(scattered, torch.tensor([[0, 1, 0, 0, 1, 1, 0]]))
    torch.testing.assert_close(left.vector, right.vector)


def test_sample_without_frames_gets_the_missing_vector():
    model = tiny_model(missing_modality="zeros")
    inputs = _batch()
    inputs["acoustic_attention_mask"][1] = 0
    out = model(**inputs, decoder_input_ids=torch.zeros(3, 1, dtype=torch.long))
    assert torch.count_nonzero(out.acoustic_vector[1]) == 0
    assert torch.count_nonzero(out.acoustic_vector[0]) > 0


def test_identity_initialised_unimse_equals_plain_t5_from_the_same_weights(tmp_path):
    torch.manual_seed(3)
    t5_config = T5Config(vocab_size=32128, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                         decoder_start_token_id=0)
    t5 = T5ForConditionalGeneration(t5_config).eval()
    t5.save_pretrained(tmp_path)
    model = UniMSEForConditionalGeneration.from_pretrained(
        tmp_path, acoustic_dim=8, visual_dim=6, pmf_identity_init=True).eval()
    for name, tensor in t5.state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], tensor, atol=0, rtol=0)
    inputs = _batch()
    labels = torch.randint(3, 1000, (3, 5))
    expected = t5(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], labels=labels).logits
    text_only = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], labels=labels).logits
    with_modalities = model(**inputs, labels=labels).logits
    torch.testing.assert_close(text_only, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(with_modalities, expected, atol=1e-6, rtol=0)


def test_loading_plain_t5_initialises_only_new_modules_with_small_adapters(tmp_path):
    torch.manual_seed(4)
    t5 = T5ForConditionalGeneration(T5Config(vocab_size=32128, d_model=64, d_kv=16, d_ff=128, num_layers=2,
                                             num_heads=4, decoder_start_token_id=0))
    t5.save_pretrained(tmp_path)
    model, info = UniMSEForConditionalGeneration.from_pretrained(tmp_path, acoustic_dim=8, visual_dim=6,
                                                                 output_loading_info=True)
    assert all(k.startswith(("acoustic_encoder", "visual_encoder", "encoder_fusion", "decoder_fusion",
                             "encoder_contrastive_head")) for k in info["missing_keys"])
    assert not info["unexpected_keys"]
    for name, tensor in t5.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name
    down = model.encoder_fusion[0].down_proj.weight
    assert 0.0005 < down.std().item() < 0.002
    assert model.encoder_fusion[0].down_proj.bias.abs().max() == 0


def test_generate_batched_equals_one_by_one_greedy():
    model = tiny_model()
    inputs = _batch()
    batched = model.generate(**inputs, max_new_tokens=6, min_new_tokens=6)
    single = torch.cat([model.generate(**{k: v[i:i + 1] for k, v in inputs.items()}, max_new_tokens=6,
                                       min_new_tokens=6) for i in range(3)])
    assert torch.equal(batched, single)


def test_generate_uses_the_modalities():
    model = tiny_model()
    for adapter in list(model.encoder_fusion) + list(model.decoder_fusion):
        torch.nn.init.normal_(adapter.out_proj.weight, std=1.0)
    inputs = _batch()
    with_av = model.generate(**inputs, max_new_tokens=8)
    text_only = model.generate(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], max_new_tokens=8)
    assert not torch.equal(with_av, text_only)


def test_generate_runs_the_modality_encoders_once_per_call_with_beams():
    model = tiny_model()
    calls = []
    model.acoustic_encoder.rnn.register_forward_hook(lambda *_: calls.append(1))
    out = model.generate(**_batch(), max_new_tokens=5, num_beams=3)
    assert out.shape[0] == 3 and len(calls) == 1


def test_beam_search_with_one_beam_equals_greedy():
    model = tiny_model()
    inputs = _batch()
    greedy = model.generate(**inputs, max_new_tokens=5)
    beams = model.generate(**inputs, max_new_tokens=5, num_beams=1)
    assert torch.equal(greedy, beams)


def test_forward_returns_lm_loss_and_contrastive_embeddings():
    model = tiny_model()
    out = model(**_batch(), labels=torch.randint(3, 1000, (3, 4)))
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert out.text_embeds.shape == out.acoustic_embeds.shape == out.visual_embeds.shape == (3, TINY["cl_proj_dim"])
    expected = info_nce_loss(out.text_embeds, out.acoustic_embeds, 0.1)
    torch.testing.assert_close(out.contrastive_loss_ta, expected)


def test_text_only_input_has_no_contrastive_terms():
    model = tiny_model()
    inputs = _batch()
    out = model(input_ids=inputs["input_ids"], labels=torch.randint(3, 1000, (3, 4)))
    assert out.contrastive_loss_ta is None and out.contrastive_loss_tv is None and torch.isfinite(out.loss)


def test_learned_missing_embedding_is_trainable():
    model = tiny_model(missing_modality="learned").train()
    inputs = _batch()
    out = model(input_ids=inputs["input_ids"], labels=torch.randint(3, 1000, (3, 4)))
    out.loss.backward()
    assert model.acoustic_encoder.missing_embedding.grad is not None


def test_gradient_checkpointing_gives_the_same_gradients():
    inputs = _batch()
    labels = torch.randint(3, 1000, (3, 4))
    grads = []
    for checkpointing in (False, True):
        model = tiny_model(seed=5)
        if checkpointing:
            model.activation_checkpointing_enable()
        model.train()
        torch.manual_seed(0)
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        out = model(**inputs, labels=labels)
        out.loss.backward()
        grads.append(model.encoder_fusion[0].down_proj.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


def test_freeze_for_fine_tuning_trains_fusion_and_chosen_blocks_only():
    model = tiny_model(num_layers=4, trainable_t5_blocks=[3])
    model.freeze_for_fine_tuning()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "encoder.block.3.layer.0.SelfAttention.q.weight" in trainable
    assert "decoder.block.3.layer.2.DenseReluDense.wi.weight" in trainable
    assert "encoder.block.2.layer.0.SelfAttention.q.weight" not in trainable
    assert "shared.weight" not in trainable
    assert "acoustic_encoder.rnn.weight_ih_l0" in trainable and "encoder_fusion.0.out_proj.weight" in trainable



def test_trainable_token_embeddings_also_train_the_tied_embedding_and_lm_head():
    model = tiny_model(trainable_t5_blocks=[0], trainable_token_embeddings=True)
    model.freeze_for_fine_tuning()
    assert model.shared.weight.requires_grad and model.lm_head.weight is model.shared.weight
    assert "shared.weight" in model.trainable_t5_parameter_names()
    assert not model.encoder.final_layer_norm.weight.requires_grad

def test_a_deep_copy_fuses_with_its_own_adapters():
    import copy

    model = tiny_model()
    clone = copy.deepcopy(model)
    inputs, start = _batch(), torch.zeros(3, 1, dtype=torch.long)
    torch.testing.assert_close(clone(**inputs, decoder_input_ids=start).logits,
                               model(**inputs, decoder_input_ids=start).logits)
    with torch.no_grad():
        clone.encoder_fusion[-1].out_proj.weight.mul_(3.0)
    assert not torch.allclose(clone(**inputs, decoder_input_ids=start).logits,
                              model(**inputs, decoder_input_ids=start).logits)


# ---------------------------------------------------------------- no state outlives a call


def test_a_direct_encoder_stack_call_after_a_full_call_is_refused():
    model = tiny_model()
    inputs = _batch()
    model(**inputs, decoder_input_ids=torch.zeros(3, 1, dtype=torch.long))
    with pytest.raises(RuntimeError, match="modality_vectors"):
        model.get_encoder()(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
    with pytest.raises(RuntimeError, match="modality_vectors"):
        model.decoder(input_ids=torch.zeros(3, 1, dtype=torch.long))


def test_encoder_outputs_of_the_stack_plus_modality_features_reproduce_the_full_call():
    model = tiny_model()
    inputs = _batch()
    start = torch.zeros(3, 2, dtype=torch.long)
    full = model(**inputs, decoder_input_ids=start).logits
    modalities = {k: v for k, v in inputs.items() if k.startswith(("acoustic", "visual"))}
    vectors = model.modality_vectors(**modalities, batch_size=3)
    encoded = model.get_encoder()(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                                  modality_vectors=vectors)
    again = model(encoder_outputs=encoded, attention_mask=inputs["attention_mask"], decoder_input_ids=start,
                  **modalities).logits
    torch.testing.assert_close(again, full, atol=1e-6, rtol=0)


def test_unimse_encoder_outputs_refuse_other_modality_features():
    model = tiny_model()
    inputs = _batch()
    encoded = model.encode(**inputs)
    other = torch.randn_like(inputs["acoustic_features"])
    with pytest.raises(ValueError, match="encoder_outputs"):
        model(encoder_outputs=encoded, attention_mask=inputs["attention_mask"],
              decoder_input_ids=torch.zeros(3, 1, dtype=torch.long), acoustic_features=other)


def test_no_tensor_of_a_finished_call_stays_referenced():
    import gc
    import weakref

    model = tiny_model().train()
    inputs = _batch()
    out = model(**inputs, labels=torch.randint(3, 1000, (3, 4)))
    out.loss.backward()
    watched = [weakref.ref(t) for t in (out.acoustic_vector, out.visual_vector, out.encoder_last_hidden_state)]
    del out
    gc.collect()
    assert all(ref() is None for ref in watched)


def test_the_previous_requests_vectors_never_reach_the_next_call():
    model = tiny_model()
    for adapter in model.encoder_fusion:
        torch.nn.init.normal_(adapter.out_proj.weight, std=1.0)
    inputs = _batch()
    text = {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"]}
    start = torch.zeros(3, 1, dtype=torch.long)
    fresh = model(**text, decoder_input_ids=start).logits
    model(**inputs, decoder_input_ids=start)
    torch.testing.assert_close(model(**text, decoder_input_ids=start).logits, fresh, atol=0, rtol=0)


# ---------------------------------------------------------------- the objective


def test_loss_is_the_weighted_unimse_objective():
    model = tiny_model(cl_weight_ta=0.3, cl_weight_tv=0.7)
    out = model(**_batch(), labels=torch.randint(3, 1000, (3, 4)))
    expected = out.lm_loss + 0.3 * out.contrastive_loss_ta + 0.7 * out.contrastive_loss_tv
    torch.testing.assert_close(out.loss, expected)
    logits = out.logits
    assert out.lm_loss > 0 and not torch.equal(out.loss, out.lm_loss) and logits.shape[0] == 3


def test_label_aware_term_is_weighted_into_the_loss_and_needs_label_ids():
    model = tiny_model(cl_label_weight=0.2)
    inputs, labels = _batch(), torch.randint(3, 1000, (3, 4))
    with pytest.raises(ValueError, match="contrastive_label_ids"):
        model(**inputs, labels=labels)
    out = model(**inputs, labels=labels, contrastive_label_ids=torch.tensor([0, 0, 1]))
    expected = supervised_contrastive_loss(out.text_embeds, torch.tensor([0, 0, 1]), 0.1)
    torch.testing.assert_close(out.contrastive_loss_label, expected)
    torch.testing.assert_close(out.loss, out.lm_loss + 0.5 * out.contrastive_loss_ta + 0.5 * out.contrastive_loss_tv
                               + 0.2 * out.contrastive_loss_label)


def test_accumulated_losses_with_num_items_in_batch_sum_to_the_token_weighted_objective():
    model = tiny_model()
    inputs = _batch()
    labels = torch.randint(3, 1000, (3, 4))
    labels[0, 2:] = -100
    halves = [slice(0, 2), slice(2, 3)]
    total_tokens = int(labels.ne(-100).sum())
    summed = sum(model(**{k: v[h] for k, v in inputs.items()}, labels=labels[h], num_items_in_batch=total_tokens).loss
                 for h in halves)
    parts = [model(**{k: v[h] for k, v in inputs.items()}, labels=labels[h]) for h in halves]
    shares = [int(labels[h].ne(-100).sum()) / total_tokens for h in halves]
    expected = sum(share * (p.lm_loss + 0.5 * (p.contrastive_loss_ta + p.contrastive_loss_tv))
                   for share, p in zip(shares, parts))
    torch.testing.assert_close(summed, expected)


def _candidates(labels: torch.Tensor, width: int = 5, seed: int = 0) -> torch.Tensor:
    """Per-position candidate ids holding each label plus random others, padded with -1 (ignored positions: pad)."""
    g = torch.Generator().manual_seed(seed)
    candidates = torch.randint(1000, 2000, (*labels.shape, width), generator=g)
    candidates[..., 1] = labels.clamp(min=0)
    candidates[..., width - 1] = -1
    candidates[labels == -100] = torch.tensor([0] + [-1] * (width - 1))
    return candidates


def test_grammar_constrained_lm_loss_is_the_cross_entropy_over_each_positions_candidates():
    model = tiny_model()
    inputs, labels = _batch(), torch.randint(3, 1000, (3, 4))
    labels[0, 2:] = -100
    candidates = _candidates(labels)
    out = model(**inputs, labels=labels, label_candidate_ids=candidates)
    full = model(**inputs, labels=labels).logits
    kept = labels != -100
    scores = full.gather(-1, candidates.clamp(min=0))[kept][:, :4]  # the last column is padding
    expected = torch.nn.functional.cross_entropy(scores, torch.ones(int(kept.sum()), dtype=torch.long))
    torch.testing.assert_close(out.lm_loss, expected)
    assert out.logits.shape == candidates.shape


def test_grammar_constrained_loss_refuses_labels_missing_from_their_candidates():
    model = tiny_model()
    labels = torch.randint(3, 1000, (3, 4))
    candidates = _candidates(labels)
    candidates[2, 1, 1] = 1999
    with pytest.raises(ValueError, match=r"labels\[2, 1\].*not among"):
        model(**_batch(), labels=labels, label_candidate_ids=candidates)


def test_grammar_constrained_loss_candidates_without_labels_are_refused():
    labels = torch.randint(3, 1000, (3, 4))
    with pytest.raises(ValueError, match="`label_candidate_ids` restricts the LM loss, so it needs `labels`"):
        tiny_model()(**_batch(), decoder_input_ids=labels, label_candidate_ids=_candidates(labels))


def test_generate_ignores_the_training_only_entries_of_a_batch():
    model = tiny_model()
    inputs = _batch()
    plain = model.generate(**inputs, max_new_tokens=4)
    labels = torch.randint(3, 1000, (3, 4))
    batch = dict(inputs, labels=labels, contrastive_label_ids=torch.tensor([0, 1, 0]),
                 label_candidate_ids=_candidates(labels))
    assert torch.equal(model.generate(**batch, max_new_tokens=4), plain)


# ---------------------------------------------------------------- strict loading


def test_a_unimse_checkpoint_missing_a_fusion_weight_is_refused_naming_it(tmp_path):
    from safetensors.torch import load_file, save_file

    tiny_model().save_pretrained(tmp_path)
    weights = load_file(str(tmp_path / "model.safetensors"))
    del weights["encoder_fusion.0.down_proj.weight"]
    save_file(weights, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ValueError, match="encoder_fusion.0.down_proj.weight"):
        UniMSEForConditionalGeneration.from_pretrained(tmp_path)


def test_a_truncated_weights_file_is_refused_naming_the_checkpoint(tmp_path):
    tiny_model().save_pretrained(tmp_path)
    path = tmp_path / "model.safetensors"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(OSError, match=str(tmp_path)):
        UniMSEForConditionalGeneration.from_pretrained(tmp_path)


def test_plain_t5_weights_load_into_a_unimse_config_passed_by_the_caller(tmp_path):
    T5ForConditionalGeneration(T5Config(**{k: v for k, v in TINY.items() if k in T5Config().to_dict()},
                                        vocab_size=32128)).save_pretrained(tmp_path)
    model = UniMSEForConditionalGeneration.from_pretrained(tmp_path, config=tiny_config())
    assert model.config.model_type == "unimse" and len(model.encoder_fusion) == 2

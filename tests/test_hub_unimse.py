"""UniMSE on the (test) Hub: complete pushes, fresh-process loads, the model card and the widget path.

Runs against the in-memory Hub-compatible server of `tests/hub_server.py` (see its fidelity gaps).
"""

import json

import numpy as np
import torch
from huggingface_hub import HfApi, ModelCard
from transformers import TrainerCallback

from hub_testing import subprocess_env
from unimse_hf.checkpoint import HUB_MODULES
from unimse_hf.model_card import build_model_card, usage_snippet
from unimse_testing import random_frames, run_without_package, tiny_model, tiny_processor

LOAD_FROM_HUB = """
import json, torch
from transformers import AutoModel, AutoModelForSeq2SeqLM, AutoProcessor
repo, revision = {repo!r}, {revision!r}
model = AutoModel.from_pretrained(repo, trust_remote_code=True, revision=revision).eval()
seq2seq = AutoModelForSeq2SeqLM.from_pretrained(repo, trust_remote_code=True, revision=revision).eval()
processor = AutoProcessor.from_pretrained(repo, trust_remote_code=True, revision=revision)
case = json.load(open({case!r}))
batch = processor(case["texts"], acoustic=[torch.tensor(a) for a in case["acoustic"]])
with torch.no_grad():
    logits = model(**batch, decoder_input_ids=torch.zeros(len(case["texts"]), 1, dtype=torch.long)).logits
    generated = seq2seq.generate(**batch, max_new_tokens=5)
print(json.dumps({{"types": [type(model).__name__, type(seq2seq).__name__, type(processor).__name__],
                   "logits": logits[:, 0, :50].tolist(), "generated": generated.tolist()}}))
"""


def _reference(model, processor, tmp_path):
    rng = np.random.default_rng(0)
    case = {"texts": ["it was really good", "a failure"], "acoustic": [a.tolist() for a in random_frames(rng, [9, 4], 8)]}
    batch = processor(case["texts"], acoustic=[np.array(a, dtype=np.float32) for a in case["acoustic"]])
    with torch.no_grad():
        logits = model(**batch, decoder_input_ids=torch.zeros(2, 1, dtype=torch.long)).logits[:, 0, :50]
        generated = model.generate(**batch, max_new_tokens=5)
    path = tmp_path / "case.json"
    path.write_text(json.dumps(case))
    return path, logits, generated


def test_model_and_processor_push_to_hub_load_in_a_fresh_process(hub_repo_id, tmp_path):
    model, processor = tiny_model(), tiny_processor()
    repo = hub_repo_id()
    model.push_to_hub(repo)
    processor.push_to_hub(repo)
    first_sha = HfApi().model_info(repo).sha
    files = set(HfApi().list_repo_files(repo))
    for name in ("model.safetensors", "config.json", "generation_config.json", "processor_config.json",
                 "tokenizer.json", *[m for m in HUB_MODULES if m not in ("pipeline_unimse.py", "label_grammar.py")]):
        assert name in files, name
    case, logits, generated = _reference(model, processor, tmp_path)
    # a later commit must not change what a pinned revision loads
    tiny_model(seed=9).push_to_hub(repo)
    result = run_without_package(LOAD_FROM_HUB.format(repo=repo, revision=first_sha, case=str(case)), cwd=tmp_path,
                                 env_extra=subprocess_env())
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["types"] == ["UniMSEForConditionalGeneration", "UniMSEForConditionalGeneration", "UniMSEProcessor"]
    assert torch.allclose(torch.tensor(report["logits"]), logits, atol=1e-6)
    assert report["generated"] == generated.tolist()


def test_model_card_metadata_results_and_usage_snippet(hub_repo_id, tmp_path):
    from unimse_hf.checkpoint import save_checkpoint

    repo = hub_repo_id()
    model, processor = tiny_model(), tiny_processor()
    metrics = {"test_mosi_mae": 1.234, "test_mosi_acc2_non0": 0.5, "test_meld_weighted_f1": 0.25, "test_loss": 3.0}
    card = build_model_card(model.config, model_name="unimse-tiny", repo_id=repo, eval_metrics=metrics,
                            datasets=["mosi", "meld"], training="2 steps on a toy set.")
    save_checkpoint(model, processor, tmp_path / "ckpt", model_card=str(card))
    HfApi().create_repo(repo)
    HfApi().upload_folder(repo_id=repo, folder_path=str(tmp_path / "ckpt"))  # validate-yaml runs on README.md
    card.validate()
    pushed = ModelCard.load(repo)
    assert pushed.data.library_name == "transformers" and "custom_code" in pushed.data.tags
    values = {(r.dataset_type, r.metric_type): r.metric_value for r in pushed.data.eval_results}
    assert values == {("mosi", "mae"): 1.234, ("mosi", "acc2_non0"): 0.5, ("meld", "weighted_f1"): 0.25}
    result = run_without_package(usage_snippet(pushed), cwd=tmp_path, env_extra=subprocess_env())
    assert result.returncode == 0, result.stderr[-3000:]
    assert "'valid': True" in result.stdout


def test_widget_examples_run_through_the_pipeline_from_the_hub(hub_repo_id, tmp_path):
    from unimse_hf.checkpoint import save_checkpoint

    repo = hub_repo_id()
    model, processor = tiny_model(), tiny_processor()
    card = build_model_card(model.config, model_name="unimse-tiny", repo_id=repo)
    save_checkpoint(model, processor, tmp_path / "ckpt", model_card=str(card))
    HfApi().create_repo(repo)
    HfApi().upload_folder(repo_id=repo, folder_path=str(tmp_path / "ckpt"))
    info = HfApi().model_info(repo)
    examples = [example["text"] for example in info.widget_data]
    code = f"""
import json
from transformers import pipeline
pipe = pipeline(model={repo!r}, trust_remote_code=True)
print(json.dumps({{"task": pipe.task, "outputs": [pipe(text) for text in {examples!r}]}}))
"""
    result = run_without_package(code, cwd=tmp_path, env_extra=subprocess_env())
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["task"] == "multimodal-sentiment-analysis" and len(report["outputs"]) == len(examples) == 2
    assert all(out["valid"] and set(out) >= {"score", "polarity", "emotion", "label"} for out in report["outputs"])


def test_trainer_checkpoint_push_mid_training_loads_in_a_fresh_process(hub_repo_id, tmp_path):
    """`HubPushCallback(strategy="checkpoint")`: the commit of the step-2 save is complete and reproduces the
    model."""
    from test_trainer import make_trainer, synthetic_rows

    from unimse_hf.hub_push_callback import HubPushCallback

    repo = hub_repo_id()
    pushes = HubPushCallback(strategy="checkpoint", repo_id=repo)
    trainer = make_trainer(tmp_path / "out", synthetic_rows(12, seed=0), max_steps=3, save_strategy="steps",
                           save_steps=2, callbacks=[pushes])
    snapshots = {}

    class WeightsAtEachSave(TrainerCallback):
        def on_save(self, args, state, control, model=None, **kwargs):
            snapshots[state.global_step] = {k: v.clone() for k, v in model.state_dict().items()}

    trainer.add_callback(WeightsAtEachSave())
    trainer.train()
    pushes.wait_until_done()
    commits = HfApi().list_repo_commits(repo)
    step2 = next(c.commit_id for c in commits if c.title == "Training in progress, step 2")
    files = set(HfApi().list_repo_files(repo, revision=step2))
    assert {"handler.py", "pipeline_unimse.py", "processor_config.json", "README.md"} <= files
    assert set(HUB_MODULES) <= files
    model = tiny_model()
    model.load_state_dict(snapshots[2])
    case, logits, generated = _reference(model.eval(), tiny_processor(), tmp_path)
    result = run_without_package(LOAD_FROM_HUB.format(repo=repo, revision=step2, case=str(case)), cwd=tmp_path,
                                 env_extra=subprocess_env())
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert torch.allclose(torch.tensor(report["logits"]), logits, atol=1e-6)
    assert report["generated"] == generated.tolist()


def test_push_checkpoint_gives_a_complete_repo_that_serves_the_pipeline(hub_repo_id, tmp_path):
    """`push_checkpoint` (the README's way to share a model) pushes one commit with the pipeline module,
    `handler.py` and the UniMSE card: `pipeline(model=repo, trust_remote_code=True)` works in a process without
    the package and predicts what the local model predicts."""
    from unimse_hf.checkpoint import HANDLER_FILE, push_checkpoint

    repo = hub_repo_id()
    model, processor = tiny_model(), tiny_processor()
    push_checkpoint(model, processor, repo)
    files = set(HfApi().list_repo_files(repo))
    assert set(HUB_MODULES) | {HANDLER_FILE, "README.md", "model.safetensors", "processor_config.json"} <= files
    assert [commit.title for commit in HfApi().list_repo_commits(repo)][0] == "Upload UniMSE checkpoint"
    assert "custom_code" in ModelCard.load(repo).data.tags
    text = "it was really good"
    batch = processor([text])
    with torch.no_grad():
        expected = processor.batch_decode(model.generate(**batch, **processor.generation_kwargs()))[0]
    code = f"""
import json
from transformers import pipeline
pipe = pipeline(model={repo!r}, trust_remote_code=True)
print(json.dumps(pipe({text!r})))
"""
    result = run_without_package(code, cwd=tmp_path, env_extra=subprocess_env())
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1])["label"] == expected

"""A saved UniMSE loads with the Auto classes in a process where `unimse_hf` is not importable."""

import json

import numpy as np
import torch

from unimse_testing import random_frames, run_without_package, tiny_model, tiny_processor

LOAD_AND_COMPARE = """
import json, torch
from transformers import AutoModel, AutoModelForSeq2SeqLM, AutoProcessor
directory = {directory!r}
model = AutoModel.from_pretrained(directory, trust_remote_code=True).eval()
seq2seq = AutoModelForSeq2SeqLM.from_pretrained(directory, trust_remote_code=True).eval()
processor = AutoProcessor.from_pretrained(directory, trust_remote_code=True)
saved = torch.load(directory + "/case.pt", weights_only=True)
batch = processor(saved["texts"], acoustic=list(saved["acoustic"]), visual=list(saved["visual"]))
assert set(batch) >= {{"acoustic_features", "visual_features"}}, sorted(batch)
with torch.no_grad():
    logits = model(**batch, labels=saved["labels"]).logits
    generated = seq2seq.generate(**batch, max_new_tokens=6)
print(json.dumps({{
    "model": type(model).__name__, "seq2seq": type(seq2seq).__name__, "processor": type(processor).__name__,
    "feature_extractor": type(processor.feature_extractor).__name__,
    "logits_diff": (logits - saved["logits"]).abs().max().item(),
    "generated_equal": bool(torch.equal(generated, saved["generated"])),
}}))
"""


def test_saved_model_and_processor_load_with_auto_classes_without_the_package(tmp_path):
    model, processor = tiny_model(), tiny_processor()
    rng = np.random.default_rng(0)
    texts = ["anyhow it was really good", "a failure"]
    acoustic, visual = random_frames(rng, [30, 12], 8), random_frames(rng, [9, 4], 6)
    batch = processor(texts, acoustic=acoustic, visual=visual, labels=["positive,2.4,joy,excited"] * 2)
    with torch.no_grad():
        logits = model(**batch).logits
        generated = model.generate(**{k: v for k, v in batch.items() if k != "labels"}, max_new_tokens=6)
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert set(config["auto_map"]) == {"AutoConfig", "AutoModel", "AutoModelForSeq2SeqLM"}
    for module in ("configuration_unimse.py", "modeling_unimse.py", "processing_unimse.py",
                   "feature_extraction_unimse.py", "labels.py"):
        assert (tmp_path / module).is_file(), module
    torch.save({"texts": texts, "acoustic": [torch.from_numpy(a) for a in acoustic],
                "visual": [torch.from_numpy(v) for v in visual], "labels": batch["labels"],
                "logits": logits, "generated": generated}, tmp_path / "case.pt")
    result = run_without_package(LOAD_AND_COMPARE.format(directory=str(tmp_path)), cwd=tmp_path,
                                 env_extra={"HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["model"] == report["seq2seq"] == "UniMSEForConditionalGeneration"
    assert report["processor"] == "UniMSEProcessor" and report["feature_extractor"] == "UniMSEFeatureExtractor"
    assert report["logits_diff"] <= 1e-6
    assert report["generated_equal"]


def test_hub_modules_import_only_torch_transformers_their_hub_client_numpy_and_the_standard_library():
    """huggingface_hub is allowed because transformers itself requires it (its `@strict` configs use it)."""
    import ast
    import sys
    from pathlib import Path

    import unimse_hf
    from unimse_hf.checkpoint import HUB_MODULES

    package = Path(unimse_hf.__file__).parent
    allowed = {"torch", "transformers", "huggingface_hub", "numpy"} | set(sys.stdlib_module_names)
    for module in HUB_MODULES:
        tree = ast.parse((package / module).read_text())
        # imports guarded by `except ImportError` are optional, as transformers' check_imports treats them
        guarded = {id(inner) for node in ast.walk(tree) if isinstance(node, ast.Try)
                   and any(isinstance(h.type, ast.Name) and h.type.id == "ImportError" for h in node.handlers)
                   for statement in node.body for inner in ast.walk(statement)}
        for node in ast.walk(tree):
            if id(node) in guarded:
                continue
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                roots = {node.module.split(".")[0]}
            else:
                continue
            assert roots <= allowed, (module, roots)

# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Specification of the `evaluate` modules in unimse_hf/evaluate_metrics: offline loading and agreement with
unimse_hf.metrics."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import evaluate
import pytest

from unimse_hf.metrics import erc_generation_metrics, msa_generation_metrics

REPO_ROOT = Path(__file__).resolve().parents[1]
MSA_MODULE = REPO_ROOT / "unimse_hf" / "evaluate_metrics" / "unimse_msa"
ERC_MODULE = REPO_ROOT / "unimse_hf" / "evaluate_metrics" / "unimse_erc"

TEXTS = ["positive,1.2,joy,excited", "negative,-0.4,sadness,sad", "neutral,0.0,neutral", "garbage"]
SCORES = [1.0, 0.6, 0.0, -1.8]
EMOTIONS = ["joy", "sadness", "neutral", "anger"]


def test_msa_module_loads_and_computes_in_an_offline_process():
    script = textwrap.dedent(
        f"""
        import json, evaluate
        msa = evaluate.load({str(MSA_MODULE)!r}, keep_in_memory=True)
        erc = evaluate.load({str(ERC_MODULE)!r}, "iemocap", keep_in_memory=True)
        print(json.dumps({{
            "msa": msa.compute(predictions={TEXTS!r}, references={SCORES!r}),
            "erc": erc.compute(predictions={TEXTS!r}, references={EMOTIONS!r}),
        }}))
        """
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_EVALUATE_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    completed = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    results = json.loads(completed.stdout.strip().splitlines()[-1])
    assert results["msa"] == pytest.approx(msa_generation_metrics(TEXTS, SCORES))
    assert results["erc"] == pytest.approx(erc_generation_metrics(TEXTS, EMOTIONS, "iemocap"))


@pytest.fixture(scope="module")
def msa_module() -> evaluate.EvaluationModule:
    return evaluate.load(str(MSA_MODULE), keep_in_memory=True)


def test_msa_module_matches_the_library_for_float_references(msa_module):
    assert msa_module.compute(predictions=TEXTS, references=SCORES) == pytest.approx(msa_generation_metrics(TEXTS, SCORES))


def test_msa_module_accepts_label_string_references(msa_module):
    labels = ["positive,1.0,joy,joy", "0.6", "neutral,0.0,neutral,neutral", "negative,-1.8,anger,anger"]
    assert msa_module.compute(predictions=TEXTS, references=labels) == pytest.approx(msa_generation_metrics(TEXTS, SCORES))


def test_msa_module_counts_an_unreadable_score_as_wrong_unless_asked_for_the_official_scoring(msa_module):
    strict = msa_module.compute(predictions=["garbage"], references=[1.0])
    official = msa_module.compute(predictions=["garbage"], references=[1.0], parse_failures="official")
    assert strict["acc2_has0"] == 0.0 and strict["mae"] == pytest.approx(4.0)
    assert official == pytest.approx(msa_generation_metrics(["garbage"], [1.0], parse_failures="official"), nan_ok=True)
    assert official["acc2_has0"] == 1.0


def test_msa_module_accumulates_batches(msa_module):
    msa_module.add_batch(predictions=TEXTS[:2], references=SCORES[:2])
    msa_module.add_batch(predictions=TEXTS[2:], references=SCORES[2:])
    assert msa_module.compute() == pytest.approx(msa_generation_metrics(TEXTS, SCORES))


@pytest.mark.parametrize("dataset", ["meld", "iemocap"])
def test_erc_module_reads_the_slot_named_by_the_configuration(dataset):
    erc = evaluate.load(str(ERC_MODULE), dataset, keep_in_memory=True)
    results = erc.compute(predictions=TEXTS, references=EMOTIONS)
    assert results == pytest.approx(erc_generation_metrics(TEXTS, EMOTIONS, dataset))


def test_erc_module_requires_a_dataset_configuration():
    with pytest.raises(KeyError, match="configuration name must be one of"):
        evaluate.load(str(ERC_MODULE))


@pytest.mark.parametrize("module_dir", [MSA_MODULE, ERC_MODULE])
def test_metric_card_declares_an_evaluate_space(module_dir):
    card = (module_dir / "README.md").read_text(encoding="utf-8")
    header = card.split("---")[1]
    assert "- evaluate" in header and "- metric" in header
    assert "sdk: gradio" in header and "app_file: app.py" in header
    assert (module_dir / "app.py").is_file()

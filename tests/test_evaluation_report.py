"""evaluation_report.md and its figures: written, numbers equal to the metrics JSON, linked from the model card."""

import json
import re

import pytest

from unimse_hf.baselines import baseline_metrics
from unimse_hf.evaluation_report import REPORT_FILE, link_report_from_model_card, write_evaluation_report
from unimse_hf.metrics import compute_unimse_metrics

PREDICTIONS = [
    {"dataset": "mosi", "target": "positive,2.0,joy,excited", "generated": "positive,1.6,joy,excited"},
    {"dataset": "mosi", "target": "negative,-1.4,anger,anger", "generated": "negative,-0.8,anger,anger"},
    {"dataset": "mosi", "target": "positive,0.6,joy,excited", "generated": "negative,-0.2,sadness,sadness"},
    {"dataset": "mosi", "target": "negative,-2.6,disgust,anger", "generated": "not a label"},
    {"dataset": "meld", "target": "neutral,0.0,neutral,neutral", "generated": "neutral,0.0,neutral,neutral"},
    {"dataset": "meld", "target": "positive,1.0,joy,excited", "generated": "positive,1.2,joy,excited"},
    {"dataset": "meld", "target": "negative,-1.0,anger,anger", "generated": "negative,-1.0,sadness,sadness"},
    {"dataset": "meld", "target": "negative,-1.0,sadness,sadness", "generated": "negative,-1"},
]
LOG_HISTORY = [{"step": 10, "loss": 3.1, "lm_loss": 2.9, "cl_ta": 0.3, "cl_tv": 0.1},
               {"step": 20, "loss": 2.0, "lm_loss": 1.9, "cl_ta": 0.15, "cl_tv": 0.05},
               {"step": 20, "eval_loss": 2.2}]


def _test_metrics() -> dict:
    metrics = compute_unimse_metrics([p["generated"] for p in PREDICTIONS], [p["target"] for p in PREDICTIONS],
                                     [p["dataset"] for p in PREDICTIONS])
    return {f"test_{name}": value for name, value in metrics.items()}


def _table_rows(report: str, heading: str) -> dict[str, list[str]]:
    section = report.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] not in ("metric", "---"):
            rows[cells[0]] = cells[1:]
    return rows


def test_report_and_figures_are_written(tmp_path):
    report = write_evaluation_report(tmp_path, _test_metrics(), PREDICTIONS, log_history=LOG_HISTORY)
    assert report.report_path == tmp_path / REPORT_FILE and report.report_path.is_file()
    assert set(report.figures) == {"scatter_mosi", "confusion_meld", "training_curves"}
    for path in report.figures.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"](figures/{path.name})" in report.report_path.read_text()


def test_report_numbers_equal_the_metrics_json(tmp_path):
    (tmp_path / "test_results.json").write_text(json.dumps(_test_metrics()))
    saved = json.loads((tmp_path / "test_results.json").read_text())
    text = write_evaluation_report(tmp_path, saved, PREDICTIONS).report_path.read_text()
    mosi, meld = _table_rows(text, "CMU-MOSI"), _table_rows(text, "MELD")
    expected = {("CMU-MOSI", "MAE (lower is better)"): "test_mosi_mae", ("CMU-MOSI", "Corr"): "test_mosi_corr",
                ("CMU-MOSI", "Acc-2 (non0)"): "test_mosi_acc2_non0", ("CMU-MOSI", "F1 (non0)"): "test_mosi_weighted_f1_non0",
                ("CMU-MOSI", "Acc-2 (has0)"): "test_mosi_acc2_has0", ("CMU-MOSI", "Acc-7"): "test_mosi_acc7",
                ("MELD", "Accuracy"): "test_meld_accuracy", ("MELD", "Weighted F1"): "test_meld_weighted_f1"}
    for (heading, label), key in expected.items():
        cell = (mosi if heading == "CMU-MOSI" else meld)[label][0]
        assert cell == f"{saved[key]:.4f}", (label, cell, saved[key])
    assert f"Overall parse-failure rate: {saved['test_parse_failure_rate']:.4f}." in text


def test_report_shows_each_baseline_beside_the_model(tmp_path):
    rows = {"mosi": {"train": [{"id": f"r{i}", "text": t, "score": s} for i, (t, s) in
                               enumerate([("good good", 2.0), ("bad bad", -2.0), ("good fine", 1.0), ("bad awful", -1.0)])],
                     "test": [{"id": f"t{i}", "text": t, "score": s} for i, (t, s) in
                              enumerate([("good", 2.0), ("bad", -1.4), ("fine", 0.6), ("awful", -2.6)])]}}
    baselines = baseline_metrics(rows)
    metrics = _test_metrics()
    text = write_evaluation_report(tmp_path, metrics, PREDICTIONS[:4], baselines=baselines).report_path.read_text()
    mae = _table_rows(text, "CMU-MOSI")["MAE (lower is better)"]
    assert mae == [f"{metrics['test_mosi_mae']:.4f}", f"{baselines['mosi']['trivial'].metrics['mae']:.4f}",
                   f"{baselines['mosi']['tfidf_linear'].metrics['mae']:.4f}"]
    assert "trivial: mean training score +0.000" in text


def test_training_curves_draw_every_logged_loss_part(tmp_path):
    text = write_evaluation_report(tmp_path, _test_metrics(), PREDICTIONS, log_history=LOG_HISTORY).report_path.read_text()
    assert "Logged parts: `loss`, `lm_loss`, `cl_ta`, `cl_tv`, `eval_loss`." in text


def test_model_card_links_the_report_and_its_figures(tmp_path):
    (tmp_path / "README.md").write_text("---\nlicense: apache-2.0\n---\n# card\n")
    report = write_evaluation_report(tmp_path / "report", _test_metrics(), PREDICTIONS, log_history=LOG_HISTORY)
    link_report_from_model_card(tmp_path, report)
    link_report_from_model_card(tmp_path, report)  # written twice: one section
    card = (tmp_path / "README.md").read_text()
    assert card.startswith("---\nlicense: apache-2.0\n---\n# card\n")
    assert card.count("## Evaluation report") == 1
    assert "[report/evaluation_report.md](report/evaluation_report.md)" in card
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", card)
    assert sorted(linked) == sorted(f"report/figures/{p.name}" for p in report.figures.values())
    assert all((tmp_path / link).is_file() for link in linked)


@pytest.mark.parametrize("metrics, predictions, argument", [
    ({"test_meld_accuracy": 0.5}, PREDICTIONS[4:], "metrics"),            # weighted F1 missing
    (None, PREDICTIONS, "metrics"),
    (_test_metrics(), [{"dataset": "mosi", "target": "positive,1.0,joy,excited"}], "predictions[0]"),
    (_test_metrics(), [{"dataset": "sst", "target": "x", "generated": "y"}], "predictions[0]['dataset']"),
    (_test_metrics(), [], "predictions"),
])
def test_bad_input_is_refused_before_anything_is_written(tmp_path, metrics, predictions, argument):
    with pytest.raises((ValueError, TypeError), match=re.escape(f"`{argument}`")):
        write_evaluation_report(tmp_path / "out", metrics, predictions)
    assert not (tmp_path / "out").exists()


def test_card_link_needs_a_card_and_a_report_inside_the_folder(tmp_path):
    report = write_evaluation_report(tmp_path / "elsewhere", _test_metrics(), PREDICTIONS)
    (tmp_path / "model").mkdir()
    with pytest.raises(FileNotFoundError, match="README.md"):
        link_report_from_model_card(tmp_path / "model", report)
    (tmp_path / "model" / "README.md").write_text("# card\n")
    with pytest.raises(ValueError, match="`report`"):
        link_report_from_model_card(tmp_path / "model", report)
    assert (tmp_path / "model" / "README.md").read_text() == "# card\n"


def test_train_script_do_predict_writes_the_report_and_links_it_from_the_card(tmp_path):
    import sys

    from datasets import Dataset

    from unimse_testing import REPO_ROOT, T5_VOCAB_DIR

    sys.path.insert(0, str(REPO_ROOT / "examples"))
    import train_unimse

    rows = [{"id": f"{p['dataset']}/{i}", "dataset": p["dataset"], "text": f"sentence number {i}", "context": None,
             "target": p["target"]} for i, p in enumerate(PREDICTIONS)]
    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "test"):
        Dataset.from_list(rows).to_parquet(str(data / f"{split}.parquet"))
    output = tmp_path / "run"
    train_unimse.main(["--tiny", "--do_train", "--do_predict", "--max_steps", "2", "--save_strategy", "no",
                       "--dataset_dir", str(data), "--output_dir", str(output), "--tokenizer_dir", str(T5_VOCAB_DIR),
                       "--use_cpu", "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "8",
                       "--report_to", "none", "--disable_tqdm", "true", "--logging_steps", "1",
                       "--generation_max_new_tokens", "32"])
    saved = json.loads((output / "test_results.json").read_text())
    report = (output / REPORT_FILE).read_text()
    assert _table_rows(report, "CMU-MOSI")["MAE (lower is better)"][0] == f"{saved['test_mosi_mae']:.4f}"
    assert _table_rows(report, "MELD")["Weighted F1"][0] == f"{saved['test_meld_weighted_f1']:.4f}"
    for name in ("scatter_mosi.png", "confusion_meld.png", "training_curves.png"):
        assert (output / "figures" / name).is_file()
        assert f"(figures/{name})" in (output / "README.md").read_text()

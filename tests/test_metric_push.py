"""The evaluate metric modules push to the (test) Hub as Spaces and load back from the download."""

import evaluate
from huggingface_hub import HfApi, snapshot_download

from unimse_hf.metrics import msa_generation_metrics, push_metric_to_hub
from unimse_testing import REPO_ROOT


def test_msa_metric_module_pushed_as_a_space_loads_from_its_download(hub_repo_id, tmp_path):
    repo = hub_repo_id()
    push_metric_to_hub(REPO_ROOT / "unimse_hf" / "evaluate_metrics" / "unimse_msa", repo)
    files = set(HfApi().list_repo_files(repo, repo_type="space"))
    assert {"unimse_msa.py", "README.md"} <= files and not any("__pycache__" in f for f in files)
    local = snapshot_download(repo, repo_type="space", local_dir=tmp_path / "unimse_msa")
    metric = evaluate.load(local)
    predictions = ["positive,1.2,joy,excited", "negative,-0.4,anger,sadness", "garbled", "positive,2.9,joy,joy"]
    references = [1.0, -1.0, 0.5, 3.0]
    result = metric.compute(predictions=predictions, references=references)
    expected = msa_generation_metrics(predictions, references)
    assert result["mae"] == expected["mae"] and result["acc2_non0"] == expected["acc2_non0"]

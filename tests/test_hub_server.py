"""Tests of the in-memory test Hub (``tests/hub_server.py``) with the real client libraries.

``huggingface_hub`` and ``transformers`` run unmodified against the server that
``tests/conftest.py`` starts on 127.0.0.1 and points ``HF_ENDPOINT`` to; nothing leaves the machine
(the network guard fails any test that tries). The models are tiny plain transformers models.

What these tests cannot show, because the server does not reproduce it (fidelity gaps):

* the Xet upload/download path that production uses by default (``HF_HUB_DISABLE_XET=1`` here);
* real git: no ``git clone``/``git push``, no ``.gitattributes`` parsing; LFS-or-not is a fixed rule
  (size > 10 MB or a binary-ish suffix);
* the Hub's full metadata validator (licenses, languages, ``model-index`` semantics): only YAML
  syntax, a mapping at the top level, a few key types and the structure of ``model-index``;
* how the Hub infers ``pipeline_tag``/``library_name`` (here: card metadata, then ``config.json``);
* rate limits, gated repos, organisations, discussions beyond the ``refs/pr/N`` ref;
* multipart LFS uploads (the server never sends ``chunk_size``);
* tree and commit-list pagination (never needed for small repos).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx2
import pytest
import torch
from huggingface_hub import (
    CommitOperationAdd,
    HfApi,
    ModelCard,
    hf_hub_download,
    snapshot_download,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from transformers import (
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
    T5Config,
    T5ForConditionalGeneration,
)

import hub_network_guard
from hub_server import LFS_SIZE_THRESHOLD, STATUS_DROPPED, TEST_TOKEN, TEST_USER, HubServer
from hub_testing import GuardMonitor, RepoIdFactory, subprocess_env

# huggingface_hub 2.4 itself PUTs LFS files with httpx2's deprecated `data=<file>` form.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>' to upload raw bytes:DeprecationWarning")

GOOD_CARD = textwrap.dedent(
    """\
    ---
    license: apache-2.0
    language: en
    library_name: transformers
    pipeline_tag: text-classification
    tags:
    - sentiment
    widget:
    - text: I like you. I love you
      example_title: positive
    model-index:
    - name: tiny-model
      results:
      - task:
          type: text-classification
        dataset:
          type: mosi
          name: CMU-MOSI
        metrics:
        - type: accuracy
          value: 0.5
    ---
    # Tiny model
    """
)


# ------------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------------


def _tiny_t5() -> T5ForConditionalGeneration:
    """A tiny randomly initialised T5 (d_model 16, one layer, vocabulary of 32)."""
    torch.manual_seed(0)
    config = T5Config(
        vocab_size=32,
        d_model=16,
        d_kv=8,
        d_ff=32,
        num_layers=1,
        num_decoder_layers=1,
        num_heads=2,
        relative_attention_num_buckets=8,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    )
    return T5ForConditionalGeneration(config).eval()


def _t5_inputs() -> dict[str, torch.Tensor]:
    return {
        "input_ids": torch.tensor([[5, 6, 7, 1], [8, 9, 1, 0]]),
        "attention_mask": torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]]),
        "decoder_input_ids": torch.tensor([[0, 3, 4], [0, 2, 2]]),
    }


def _write(folder: Path, files: dict[str, bytes]) -> Path:
    for relative, data in files.items():
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return folder


def _small_folder(folder: Path, marker: str = "v1") -> Path:
    return _write(
        folder,
        {
            "README.md": GOOD_CARD.encode(),
            "config.json": b'{"model_type": "t5", "architectures": ["T5ForConditionalGeneration"]}',
            "notes/readme.txt": f"notes {marker}\n".encode(),
            "weights.safetensors": f"fake weights {marker}".encode(),
        },
    )


# ------------------------------------------------------------------------------------------------------
# accounts and repos
# ------------------------------------------------------------------------------------------------------


def test_whoami_returns_the_test_user() -> None:
    """The test token identifies user ``tester``."""
    assert HfApi().whoami()["name"] == TEST_USER


def test_whoami_rejects_a_bad_token() -> None:
    """A wrong token is answered 401."""
    with pytest.raises(HfHubHTTPError) as caught:
        HfApi(token="hf_wrong").whoami()
    assert caught.value.response.status_code == 401


def test_create_repo_returns_url_of_the_new_repo(hub_server: HubServer, hub_repo_id: RepoIdFactory) -> None:
    """create_repo answers a URL that parses back to the repo id, with an initial commit on main."""
    repo_id = hub_repo_id()
    url = HfApi().create_repo(repo_id)
    assert url.repo_id == repo_id
    assert url == f"{hub_server.endpoint}/{repo_id}"
    assert [c.title for c in HfApi().list_repo_commits(repo_id)] == ["initial commit"]


def test_create_repo_twice_raises_conflict(hub_repo_id: RepoIdFactory) -> None:
    """A second create_repo without exist_ok is a 409."""
    repo_id = hub_repo_id()
    HfApi().create_repo(repo_id)
    with pytest.raises(HfHubHTTPError) as caught:
        HfApi().create_repo(repo_id)
    assert caught.value.response.status_code == 409


def test_create_repo_exist_ok_returns_existing_url(hub_server: HubServer, hub_repo_id: RepoIdFactory) -> None:
    """With exist_ok the client swallows the 409 and still reads ``url`` from its body."""
    repo_id = hub_repo_id()
    first = HfApi().create_repo(repo_id, repo_type="dataset")
    again = HfApi().create_repo(repo_id, repo_type="dataset", exist_ok=True)
    assert again == first == f"{hub_server.endpoint}/datasets/{repo_id}"
    assert hub_server.find_requests("POST", r"^/api/repos/create$")[-1].status == 409


def test_create_repo_outside_own_namespace_is_forbidden() -> None:
    """The test user may only write to its own namespace."""
    with pytest.raises(HfHubHTTPError) as caught:
        HfApi().create_repo("someone-else/model")
    assert caught.value.response.status_code == 403


def test_delete_repo_removes_it(hub_server: HubServer, hub_repo_id: RepoIdFactory) -> None:
    """delete_repo removes the repo; reading it afterwards maps to RepositoryNotFoundError."""
    repo_id = hub_repo_id()
    HfApi().create_repo(repo_id)
    HfApi().delete_repo(repo_id)
    assert not hub_server.repo_exists(repo_id)
    with pytest.raises(RepositoryNotFoundError):
        HfApi().model_info(repo_id)


def test_private_repo_is_invisible_without_token(hub_repo_id: RepoIdFactory) -> None:
    """Anonymous reads of a private repo are answered as if it did not exist."""
    repo_id = hub_repo_id()
    HfApi().create_repo(repo_id, private=True)
    assert HfApi().model_info(repo_id).private is True
    with pytest.raises(RepositoryNotFoundError):
        HfApi(token=False).model_info(repo_id)


def test_create_branch_twice_is_tolerated_with_exist_ok(hub_repo_id: RepoIdFactory) -> None:
    """A second create_branch is a 409, which exist_ok=True swallows."""
    repo_id = hub_repo_id()
    api = HfApi()
    api.create_repo(repo_id)
    api.create_branch(repo_id, branch="dev")
    with pytest.raises(HfHubHTTPError) as caught:
        api.create_branch(repo_id, branch="dev")
    assert caught.value.response.status_code == 409
    api.create_branch(repo_id, branch="dev", exist_ok=True)
    assert sorted(branch.name for branch in api.list_repo_refs(repo_id).branches) == ["dev", "main"]


# ------------------------------------------------------------------------------------------------------
# uploads
# ------------------------------------------------------------------------------------------------------


def test_upload_folder_stores_regular_and_lfs_files(
    hub_server: HubServer, hub_repo_id: RepoIdFactory, tmp_path: Path
) -> None:
    """Small text files are committed inline; a >10 MB file and a .safetensors file go through LFS."""
    repo_id = hub_repo_id()
    api = HfApi()
    api.create_repo(repo_id)
    big = os.urandom(LFS_SIZE_THRESHOLD + 1)
    folder = _small_folder(tmp_path / "folder")
    (folder / "big.dat").write_bytes(big)
    hub_server.clear_request_log()

    api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message="upload")

    tree = {entry.path: entry for entry in api.list_repo_tree(repo_id, recursive=True)}
    assert set(tree) == {
        ".gitattributes",
        "README.md",
        "config.json",
        "notes",
        "notes/readme.txt",
        "weights.safetensors",
        "big.dat",
    }
    assert tree["big.dat"].lfs is not None and tree["big.dat"].lfs.size == len(big)
    assert tree["weights.safetensors"].lfs is not None
    assert tree["config.json"].lfs is None and tree["notes/readme.txt"].lfs is None
    assert hub_server.read_file(repo_id, "big.dat") == big
    uploads = hub_server.find_requests("PUT", r"^/lfs/", server="cdn")
    assert len(uploads) == 2 and all(record.status == 200 for record in uploads)
    assert len(hub_server.find_requests("POST", r"/info/lfs/objects/verify$")) == 2


def test_reupload_of_unchanged_folder_makes_no_commit(
    hub_server: HubServer, hub_repo_id: RepoIdFactory, tmp_path: Path
) -> None:
    """Preupload reports existing oids, so an identical second upload sends neither bytes nor a commit."""
    repo_id = hub_repo_id()
    api = HfApi()
    api.create_repo(repo_id)
    folder = _small_folder(tmp_path / "folder")
    first = api.upload_folder(repo_id=repo_id, folder_path=folder)
    hub_server.clear_request_log()

    second = api.upload_folder(repo_id=repo_id, folder_path=folder)

    assert second.oid == first.oid
    assert hub_server.find_requests("POST", r"/commit/") == []
    assert hub_server.find_requests("PUT", server="cdn") == []
    assert len(api.list_repo_commits(repo_id)) == 2


def test_list_repo_tree_without_recursion_lists_top_level_entries(hub_repo_id: RepoIdFactory, tmp_path: Path) -> None:
    """A non-recursive tree lists the files and folders of one level; a sub-path lists that folder."""
    repo_id = hub_repo_id()
    api = HfApi()
    api.create_repo(repo_id)
    api.upload_folder(repo_id=repo_id, folder_path=_small_folder(tmp_path / "folder"))

    top = {(type(entry).__name__, entry.path) for entry in api.list_repo_tree(repo_id)}
    notes = [entry.path for entry in api.list_repo_tree(repo_id, path_in_repo="notes")]

    assert ("RepoFolder", "notes") in top and ("RepoFile", "config.json") in top
    assert ("RepoFile", "notes/readme.txt") not in top
    assert notes == ["notes/readme.txt"]


def test_commit_with_stale_parent_commit_is_rejected(hub_repo_id: RepoIdFactory) -> None:
    """``parent_commit`` that is no longer the branch head is answered 412."""
    repo_id = hub_repo_id()
    api = HfApi()
    api.create_repo(repo_id)
    stale = api.model_info(repo_id).sha
    api.upload_file(path_or_fileobj=b"one", path_in_repo="a.txt", repo_id=repo_id)
    with pytest.raises(HfHubHTTPError) as caught:
        api.create_commit(
            repo_id,
            operations=[CommitOperationAdd("b.txt", b"two")],
            commit_message="late",
            parent_commit=stale,
        )
    assert caught.value.response.status_code == 412


def test_delete_file_and_folder_commits_remove_paths(
    hub_server: HubServer, hub_repo_id: RepoIdFactory, tmp_path: Path
) -> None:
    """``deletedFile`` and ``deletedFolder`` operations remove what they name."""
    repo_id = hub_repo_id()
    api = HfApi()
    api.create_repo(repo_id)
    api.upload_folder(repo_id=repo_id, folder_path=_small_folder(tmp_path / "folder"))
    api.delete_file("config.json", repo_id=repo_id)
    api.delete_folder("notes", repo_id=repo_id)
    assert hub_server.list_files(repo_id) == [".gitattributes", "README.md", "weights.safetensors"]


# ------------------------------------------------------------------------------------------------------
# downloads
# ------------------------------------------------------------------------------------------------------


def test_hf_hub_download_on_fresh_cache_returns_uploaded_bytes(
    hub_server: HubServer, hub_repo_id: RepoIdFactory, tmp_path: Path, empty_hf_cache: Path
) -> None:
    """Regular files come from ``resolve``; LFS files through a 302 to the CDN, without the token."""
    repo_id = hub_repo_id()
    HfApi().create_repo(repo_id)
    HfApi().upload_folder(repo_id=repo_id, folder_path=_small_folder(tmp_path / "folder"))
    hub_server.clear_request_log()

    config_path = hf_hub_download(repo_id, "config.json")
    weights_path = hf_hub_download(repo_id, "weights.safetensors")

    assert Path(config_path).is_relative_to(empty_hf_cache)
    assert Path(config_path).read_bytes() == hub_server.read_file(repo_id, "config.json")
    assert Path(weights_path).read_bytes() == b"fake weights v1"
    heads = hub_server.find_requests("HEAD", r"/resolve/main/weights\.safetensors$")
    assert [record.status for record in heads] == [302]
    cdn_gets = hub_server.find_requests("GET", server="cdn")
    assert len(cdn_gets) == 1 and cdn_gets[0].status == 200 and not cdn_gets[0].authorized


def test_snapshot_download_fetches_every_file(
    hub_server: HubServer, hub_repo_id: RepoIdFactory, tmp_path: Path, empty_hf_cache: Path
) -> None:
    """snapshot_download lists the tree at the head sha and fetches every file into that snapshot."""
    repo_id = hub_repo_id()
    HfApi().create_repo(repo_id)
    HfApi().upload_folder(repo_id=repo_id, folder_path=_small_folder(tmp_path / "folder"))
    head = hub_server.resolve_revision(repo_id)

    snapshot = Path(snapshot_download(repo_id))

    assert snapshot.name == head
    downloaded = sorted(str(p.relative_to(snapshot)) for p in snapshot.rglob("*") if p.is_file())
    assert downloaded == hub_server.list_files(repo_id)
    assert (snapshot / "notes" / "readme.txt").read_bytes() == b"notes v1\n"
    assert hub_server.find_requests("GET", rf"/tree/{head}$")


def test_pinned_revision_returns_old_content_after_new_commit(
    hub_repo_id: RepoIdFactory, tmp_path: Path, empty_hf_cache: Path
) -> None:
    """A commit sha is an immutable snapshot: downloads pinned to it ignore later commits."""
    repo_id = hub_repo_id()
    api = HfApi()
    api.create_repo(repo_id)
    old = api.upload_file(path_or_fileobj=b"old", path_in_repo="data.txt", repo_id=repo_id).oid
    api.upload_file(path_or_fileobj=b"new", path_in_repo="data.txt", repo_id=repo_id)

    assert Path(hf_hub_download(repo_id, "data.txt", revision=old)).read_bytes() == b"old"
    assert Path(hf_hub_download(repo_id, "data.txt")).read_bytes() == b"new"


def test_range_request_returns_partial_content(hub_server: HubServer, hub_repo_id: RepoIdFactory) -> None:
    """GET with ``Range`` answers 206 with the slice and ``Content-Range``, on the Hub and on the CDN."""
    repo_id = hub_repo_id()
    api = HfApi()
    api.create_repo(repo_id)
    api.upload_file(path_or_fileobj=b"0123456789", path_in_repo="digits.txt", repo_id=repo_id)
    api.upload_file(path_or_fileobj=b"abcdefghij", path_in_repo="letters.bin", repo_id=repo_id)

    regular = httpx2.get(f"{hub_server.endpoint}/{repo_id}/resolve/main/digits.txt", headers={"Range": "bytes=2-4"})
    lfs = httpx2.get(
        f"{hub_server.endpoint}/{repo_id}/resolve/main/letters.bin",
        headers={"Range": "bytes=-3"},
        follow_redirects=True,
    )

    assert (regular.status_code, regular.content, regular.headers["Content-Range"]) == (206, b"234", "bytes 2-4/10")
    assert (lfs.status_code, lfs.content, lfs.headers["Content-Range"]) == (206, b"hij", "bytes 7-9/10")


def test_missing_file_maps_to_entry_not_found(hub_repo_id: RepoIdFactory, empty_hf_cache: Path) -> None:
    """``X-Error-Code: EntryNotFound`` becomes EntryNotFoundError."""
    repo_id = hub_repo_id()
    HfApi().create_repo(repo_id)
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo_id, "missing.txt")


def test_unknown_revision_maps_to_revision_not_found(hub_repo_id: RepoIdFactory, empty_hf_cache: Path) -> None:
    """``X-Error-Code: RevisionNotFound`` becomes RevisionNotFoundError."""
    repo_id = hub_repo_id()
    HfApi().create_repo(repo_id)
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(repo_id, ".gitattributes", revision="no-such-branch")


def test_unknown_repo_maps_to_repository_not_found(empty_hf_cache: Path) -> None:
    """``X-Error-Code: RepoNotFound`` becomes RepositoryNotFoundError."""
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(f"{TEST_USER}/does-not-exist", "config.json")


def test_dataset_repo_uses_prefixed_urls(
    hub_server: HubServer, hub_repo_id: RepoIdFactory, empty_hf_cache: Path
) -> None:
    """Dataset repos live under ``/datasets/`` in non-API URLs, for uploads (LFS) and downloads."""
    repo_id = hub_repo_id()
    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset")
    api.upload_file(path_or_fileobj=b"PAR1", path_in_repo="train.parquet", repo_id=repo_id, repo_type="dataset")

    path = hf_hub_download(repo_id, "train.parquet", repo_type="dataset")

    assert Path(path).read_bytes() == b"PAR1"
    assert hub_server.find_requests("POST", rf"^/datasets/{repo_id}\.git/info/lfs/objects/batch$")
    assert hub_server.find_requests("HEAD", rf"^/datasets/{repo_id}/resolve/main/train\.parquet$")


# ------------------------------------------------------------------------------------------------------
# metadata
# ------------------------------------------------------------------------------------------------------


def test_model_info_exposes_card_metadata_config_and_widget(hub_repo_id: RepoIdFactory, tmp_path: Path) -> None:
    """model_info reads cardData, pipeline_tag, library_name, widgetData from the card and config.json."""
    repo_id = hub_repo_id()
    api = HfApi()
    api.create_repo(repo_id)
    api.upload_folder(repo_id=repo_id, folder_path=_small_folder(tmp_path / "folder"))

    info = api.model_info(repo_id, files_metadata=True)

    assert info.pipeline_tag == "text-classification"
    assert info.library_name == "transformers"
    assert info.card_data is not None and info.card_data.license == "apache-2.0"
    assert info.widget_data == [{"text": "I like you. I love you", "example_title": "positive"}]
    assert info.config == {"model_type": "t5", "architectures": ["T5ForConditionalGeneration"]}
    assert {"sentiment", "transformers", "license:apache-2.0", "en"} <= set(info.tags or [])
    sizes = {sibling.rfilename: sibling.size for sibling in info.siblings or []}
    assert sizes["weights.safetensors"] == len(b"fake weights v1")


def test_model_card_validate_accepts_good_card() -> None:
    """A well-formed card passes ``/api/validate-yaml``."""
    ModelCard(GOOD_CARD).validate()


def test_model_card_validate_rejects_malformed_model_index() -> None:
    """A model-index metric whose value is a list is rejected with a 400 turned into ValueError."""
    bad = GOOD_CARD.replace("value: 0.5", "value: [0.5, 0.6]")
    card = ModelCard(bad)  # the client-side parser accepts it
    assert "- 0.6" in str(card)
    with pytest.raises(ValueError, match=r"metrics\[0\]\.value"):
        card.validate()


def test_upload_of_readme_with_non_mapping_metadata_is_rejected(hub_repo_id: RepoIdFactory) -> None:
    """create_commit validates README.md first: a YAML list as metadata raises before any upload."""
    repo_id = hub_repo_id()
    api = HfApi()
    api.create_repo(repo_id)
    with pytest.raises(ValueError, match="must be a YAML mapping"):
        api.upload_file(path_or_fileobj=b"---\n- a\n- b\n---\ntext\n", path_in_repo="README.md", repo_id=repo_id)


# ------------------------------------------------------------------------------------------------------
# transformers
# ------------------------------------------------------------------------------------------------------


def test_t5_push_to_hub_then_from_pretrained_gives_equal_logits(
    hub_repo_id: RepoIdFactory, empty_hf_cache: Path
) -> None:
    """A tiny T5 pushed with push_to_hub reloads from the Hub (fresh cache) with identical logits."""
    repo_id = hub_repo_id()
    model = _tiny_t5()
    model.push_to_hub(repo_id)

    reloaded = T5ForConditionalGeneration.from_pretrained(repo_id).eval()

    with torch.no_grad():
        expected = model(**_t5_inputs()).logits
        actual = reloaded(**_t5_inputs()).logits
    torch.testing.assert_close(actual, expected, rtol=0, atol=0)
    assert (empty_hf_cache / "hub").is_dir()


def test_push_to_hub_to_branch_leaves_main_unchanged(hub_server: HubServer, hub_repo_id: RepoIdFactory) -> None:
    """``push_to_hub(revision="dev")`` creates the branch and commits there only."""
    repo_id = hub_repo_id()
    model = _tiny_t5()
    model.push_to_hub(repo_id)
    main_before = hub_server.resolve_revision(repo_id)

    model.config.dropout_rate = 0.25
    model.push_to_hub(repo_id, revision="dev")

    refs = HfApi().list_repo_refs(repo_id)
    assert {branch.name for branch in refs.branches} == {"main", "dev"}
    assert hub_server.resolve_revision(repo_id) == main_before
    assert b'"dropout_rate": 0.25' in hub_server.read_file(repo_id, "config.json", revision="dev")
    assert b'"dropout_rate": 0.25' not in hub_server.read_file(repo_id, "config.json")


def test_push_to_hub_with_create_pr_opens_pull_request_ref(hub_server: HubServer, hub_repo_id: RepoIdFactory) -> None:
    """``create_pr=True`` commits to a new ``refs/pr/1`` and leaves main alone."""
    repo_id = hub_repo_id()
    model = _tiny_t5()
    model.push_to_hub(repo_id)
    main_before = hub_server.resolve_revision(repo_id)

    model.config.dropout_rate = 0.3
    commit = model.push_to_hub(repo_id, create_pr=True)

    assert commit.pr_revision == "refs/pr/1"
    assert commit.pr_url == f"{hub_server.endpoint}/{repo_id}/discussions/1"
    refs = HfApi().list_repo_refs(repo_id, include_pull_requests=True)
    assert [(ref.ref, ref.target_commit) for ref in refs.pull_requests or []] == [("refs/pr/1", commit.oid)]
    assert hub_server.resolve_revision(repo_id) == main_before
    assert hub_server.find_requests("POST", r"/commit/main$")[-1].query == "create_pr=1"


def test_seq2seq_trainer_checkpoint_strategy_pushes_expected_commits(
    hub_server: HubServer, hub_repo_id: RepoIdFactory, tmp_path: Path
) -> None:
    """Two training steps with hub_strategy="checkpoint" give the documented commit sequence and files."""
    repo_id = hub_repo_id()
    torch.manual_seed(0)
    features = {
        "input_ids": torch.tensor([5, 6, 7, 1]),
        "attention_mask": torch.ones(4, dtype=torch.long),
        "labels": torch.tensor([3, 4, 1]),
    }
    args = Seq2SeqTrainingArguments(
        output_dir=str(tmp_path / "out"),
        max_steps=2,
        per_device_train_batch_size=2,
        learning_rate=1e-3,
        save_strategy="steps",
        save_steps=2,
        logging_steps=1,
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        push_to_hub=True,
        hub_model_id=repo_id,
        hub_strategy="checkpoint",
    )
    trainer = Seq2SeqTrainer(model=_tiny_t5().train(), args=args, train_dataset=[features] * 4)

    trainer.train()
    trainer.push_to_hub()

    titles = [commit.title for commit in HfApi().list_repo_commits(repo_id)]
    assert titles == [
        "End of training",
        "Training in progress, step 2, checkpoint",
        "Training in progress, step 2",
        "initial commit",
    ]
    files = set(hub_server.list_files(repo_id))
    assert {
        "config.json",
        "model.safetensors",
        "README.md",
        "last-checkpoint/optimizer.pt",
        "last-checkpoint/scheduler.pt",
        "last-checkpoint/trainer_state.json",
    } <= files
    assert any(path.startswith("last-checkpoint/rng_state") for path in files)


# ------------------------------------------------------------------------------------------------------
# fault injection
# ------------------------------------------------------------------------------------------------------


def test_injected_500_on_commit_makes_upload_folder_raise(
    hub_server: HubServer, hub_repo_id: RepoIdFactory, tmp_path: Path
) -> None:
    """The commit POST is not retried by the client, so a 500 surfaces as HfHubHTTPError."""
    repo_id = hub_repo_id()
    HfApi().create_repo(repo_id)
    rule = hub_server.inject_faults(r"/commit/", status=500, count=1)

    with pytest.raises(HfHubHTTPError) as caught:
        HfApi().upload_folder(repo_id=repo_id, folder_path=_small_folder(tmp_path / "folder"))

    assert caught.value.response.status_code == 500
    assert (rule.hits, rule.remaining) == (1, 0)
    assert hub_server.list_files(repo_id) == [".gitattributes"]


def test_upload_retry_after_injected_500_succeeds(
    hub_server: HubServer, hub_repo_id: RepoIdFactory, tmp_path: Path
) -> None:
    """Once the fault is used up, the same upload goes through (LFS objects already stored are reused)."""
    repo_id = hub_repo_id()
    HfApi().create_repo(repo_id)
    folder = _small_folder(tmp_path / "folder")
    hub_server.inject_faults(r"/commit/", status=500, count=1)
    with pytest.raises(HfHubHTTPError):
        HfApi().upload_folder(repo_id=repo_id, folder_path=folder)
    uploads_before = len(hub_server.find_requests("PUT", server="cdn"))

    HfApi().upload_folder(repo_id=repo_id, folder_path=folder)

    assert "weights.safetensors" in hub_server.list_files(repo_id)
    assert len(hub_server.find_requests("PUT", server="cdn")) == uploads_before


def test_dropped_connection_surfaces_as_transport_error(hub_server: HubServer, hub_repo_id: RepoIdFactory) -> None:
    """``status="drop"`` closes the socket without a response; the request log records it."""
    repo_id = hub_repo_id()
    HfApi().create_repo(repo_id)
    hub_server.inject_faults(rf"^/api/models/{repo_id}$", status="drop", count=1, method="GET")

    with pytest.raises(httpx2.TransportError):
        HfApi().model_info(repo_id)

    assert hub_server.find_requests("GET", rf"^/api/models/{repo_id}$")[-1].status == STATUS_DROPPED
    assert HfApi().model_info(repo_id).id == repo_id


# ------------------------------------------------------------------------------------------------------
# network guard
# ------------------------------------------------------------------------------------------------------


def test_network_guard_blocks_non_loopback_connect_before_any_traffic(
    hub_server: HubServer, network_guard_monitor: GuardMonitor
) -> None:
    """Connecting to 10.255.255.1 raises inside the guard; the real connect is never called."""
    with hub_network_guard.spy_on_real_calls() as real_calls:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            with pytest.raises(hub_network_guard.NetworkAccessBlockedError):
                sock.connect(("10.255.255.1", 80))
        with pytest.raises(hub_network_guard.NetworkAccessBlockedError):
            socket.create_connection(("10.255.255.1", 443), timeout=0.5)
        with socket.create_connection(("127.0.0.1", hub_server.port), timeout=5):
            pass  # positive control: loopback passes and shows up in the spy

    assert [name for name, _ in real_calls if name.startswith("connect")] == ["connect"]
    assert real_calls[-1][1] == ("127.0.0.1", hub_server.port)
    assert len(network_guard_monitor.take()) == 2


def test_network_guard_blocks_dns_lookup_of_remote_name(network_guard_monitor: GuardMonitor) -> None:
    """Forward and reverse lookups that need DNS are blocked; IP literals and localhost are not."""
    with pytest.raises(hub_network_guard.NetworkAccessBlockedError):
        socket.getaddrinfo("huggingface.co", 443)
    with pytest.raises(hub_network_guard.NetworkAccessBlockedError):
        socket.gethostbyaddr("8.8.8.8")
    assert socket.getaddrinfo("127.0.0.1", 80)
    assert socket.getaddrinfo("localhost", 80)
    blocked = network_guard_monitor.take()
    assert len(blocked) == 2 and "huggingface.co" in blocked[0] and "8.8.8.8" in blocked[1]


def test_network_guard_stops_hub_client_pointed_at_remote_endpoint(network_guard_monitor: GuardMonitor) -> None:
    """The guard error is not a connection error, so the client cannot mistake it for "offline"."""
    with pytest.raises(hub_network_guard.NetworkAccessBlockedError):
        HfApi(endpoint="http://10.255.255.1").whoami()
    assert [line for line in network_guard_monitor.take() if "10.255.255.1" in line]


def test_subprocess_inherits_network_guard(network_guard_monitor: GuardMonitor) -> None:
    """A Python child started with subprocess_env() is guarded too, and reports to the session log."""
    code = "import socket; socket.create_connection(('10.255.255.1', 80), timeout=0.5)"
    result = subprocess.run(
        [sys.executable, "-c", code], env=subprocess_env(), capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "NetworkAccessBlockedError" in result.stderr
    assert any("10.255.255.1" in line for line in network_guard_monitor.take())


def test_network_guard_fails_a_test_that_swallows_the_error(tmp_path: Path) -> None:
    """The conftest check fails a test whose code caught NetworkAccessBlockedError and carried on."""
    test_file = tmp_path / "test_swallow.py"
    test_file.write_text(
        "import socket\n\n"
        "def test_swallows():\n"
        "    try:\n"
        "        socket.create_connection(('10.255.255.1', 80), timeout=0.2)\n"
        "    except Exception:\n"
        "        pass\n"
    )
    tests_dir = str(Path(__file__).resolve().parent)
    env = subprocess_env(extra={"PYTHONPATH": os.pathsep.join([subprocess_env()["PYTHONPATH"], tests_dir])})
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "conftest", str(test_file)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Network access outside loopback was attempted" in result.stdout
    assert "10.255.255.1" in result.stdout


def test_subprocess_env_downloads_from_test_hub_into_empty_cache(hub_repo_id: RepoIdFactory, tmp_path: Path) -> None:
    """A child process with subprocess_env() reaches the test Hub with the token and a fresh cache."""
    repo_id = hub_repo_id()
    HfApi().create_repo(repo_id)
    HfApi().upload_file(path_or_fileobj=b"hello child", path_in_repo="hello.txt", repo_id=repo_id)
    hf_home = tmp_path / "child_home"
    code = (
        "import sys; from huggingface_hub import hf_hub_download, whoami; "
        f"p = hf_hub_download({repo_id!r}, 'hello.txt'); "
        "print(whoami()['name']); print(p); print(open(p).read())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=subprocess_env(hf_home), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    name, path, content = result.stdout.splitlines()[-3:]
    assert (name, content) == (TEST_USER, "hello child")
    assert Path(path).is_relative_to(hf_home)


def test_test_token_is_the_one_in_the_environment() -> None:
    """The session environment carries the server's token and disables Xet."""
    assert os.environ["HF_TOKEN"] == TEST_TOKEN
    assert os.environ["HF_HUB_DISABLE_XET"] == "1"

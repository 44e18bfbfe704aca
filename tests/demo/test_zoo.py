"""Demo datasets and the demo-classifier zoo: readers, splits, build/cache mechanics.

The build tests run the real (offline) MiniLM fine-tune with tiny settings (a few steps on a few
dozen texts); the full demo builds are never run here.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from synapse_lens.data import TextDataset
from synapse_lens.demo import zoo
from synapse_lens.demo.datasets import (
    make_splits,
    read_sms_spam,
    read_trec6,
    split_indices,
)
from synapse_lens.demo.zoo import (
    DEMO_TASKS,
    ZOO_CONFIGS,
    ZooConfig,
    cache_root,
    demo_dataset,
    demo_splits,
    load_demo_classifier,
    read_manifest,
    zoo_dir,
)

TRECS = ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")
# Tiny but complete builds: 32 training texts, 2 steps, ~110 held-out questions.
TINY = ZooConfig(held_out=0.02, max_train=32, steps=2, batch_size=16, max_length=16, seed=3)


def _key(text: str) -> str:
    return " ".join(text.split()).casefold()


def _parts(data: TextDataset) -> tuple[tuple[str, ...], np.ndarray, tuple[str, ...]]:
    return data.texts, data.labels, data.label_names


# --- readers -----------------------------------------------------------------------------------


def test_sms_spam_reader_counts_names_and_recovered_rows() -> None:
    texts, labels, names = _parts(read_sms_spam())
    assert names == ("ham", "spam")
    assert len(texts) == len(labels) == 5159
    assert np.bincount(labels).tolist() == [4517, 642]
    assert len({_key(t) for t in texts}) == len(texts)  # deduplicated
    assert not any("\n" in t or t != t.strip() for t in texts)  # merged rows were split apart
    # a message that the shipped CSV only holds inside a merged row (file row 3737)
    assert "i am going to bed now prin" in {t.casefold() for t in texts}
    assert labels.dtype == np.int64


def test_sms_reader_splits_merged_rows_and_validates(tmp_path: Path) -> None:
    path = tmp_path / "sms.csv"
    path.write_text(',spam,text\n0,0,"hi there\nspam\tWIN cash now\nham\tok see you"\n'
                    '1,1,WIN  cash NOW\n2,0,fine\n3,1,fine\n', encoding="utf-8")
    texts, labels, _ = _parts(read_sms_spam(path))
    # "WIN cash now" appears twice with one label: kept once; "fine" has two labels: dropped
    assert texts == ("hi there", "WIN cash now", "ok see you")
    assert labels.tolist() == [0, 1, 0]
    path.write_text("id,label,text\n0,0,x\n", encoding="utf-8")
    with pytest.raises(ValueError, match="header"):
        read_sms_spam(path)
    path.write_text(",spam,text\n0,maybe,x\n", encoding="utf-8")
    with pytest.raises(ValueError, match="0\\|1"):
        read_sms_spam(path)


def test_trec6_reader_dedupes() -> None:
    texts, labels, names = _parts(read_trec6())
    assert names == TRECS
    assert len(texts) == 5380  # 15,452 lines in the file, most questions repeated
    assert np.bincount(labels, minlength=6).tolist() == [86, 1152, 1245, 1215, 824, 858]
    assert len({_key(t) for t in texts}) == len(texts)


def test_trec6_reader_drops_conflicting_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "q.txt"
    path.write_text("HUM:ind Who is he ?\nLOC:city Where is it ?\nNUM:date Who is  he ?\n"
                    "LOC:other where is it ?\nDESC:def What is a cat ?\n\n", encoding="utf-8")
    texts, labels, names = _parts(read_trec6(path))
    assert texts == ("Where is it ?", "What is a cat ?")
    assert names == ("DESC", "HUM", "LOC", "NUM")  # sorted names, conflicting ones included
    assert labels.tolist() == [2, 0]
    path.write_text("HUM:ind Who is he ?\nno label here\n", encoding="utf-8")
    with pytest.raises(ValueError, match=":2: expected 'COARSE:fine question'"):
        read_trec6(path)


# --- splits ------------------------------------------------------------------------------------


@pytest.mark.parametrize("task", sorted(t for t in DEMO_TASKS if DEMO_TASKS[t].split is None))
def test_splits_disjoint_stratified_deterministic(task: str) -> None:
    data = demo_dataset(task)
    cfg = ZOO_CONFIGS[task]
    splits = demo_splits(task)
    assert splits.label_names == data.label_names
    assert len(splits.train.texts) == min(cfg.max_train, round(len(data.texts) * 0.75))
    assert abs(len(splits.held_out.texts) - cfg.held_out * len(data.texts)) <= 1
    assert not {_key(t) for t in splits.train.texts} & {_key(t) for t in splits.held_out.texts}
    for labels in (splits.train.labels, splits.held_out.labels):  # stratified
        share = np.bincount(labels, minlength=len(data.label_names)) / len(labels)
        overall = np.bincount(data.labels) / len(data.labels)
        assert np.abs(share - overall).max() < 0.01
    again = demo_splits(task)
    assert again.train.texts == splits.train.texts
    assert again.held_out.texts == splits.held_out.texts
    assert np.array_equal(again.held_out.labels, splits.held_out.labels)
    other = demo_splits(task, ZooConfig(seed=cfg.seed + 1, max_train=cfg.max_train))
    assert other.held_out.texts != splits.held_out.texts
    with pytest.raises(ValueError, match="read-only"):
        splits.train.labels[0] = 1


def test_held_out_does_not_depend_on_max_train() -> None:
    data = read_trec6()
    big = make_splits("trec-6", data, held_out=0.25, max_train=10_000, seed=0)
    small = make_splits("trec-6", data, held_out=0.25, max_train=64, seed=0)
    assert big.held_out.texts == small.held_out.texts
    assert len(small.train.texts) == 64 and set(small.train.texts) <= set(big.train.texts)
    assert set(small.train.labels.tolist()) == set(range(6))


def test_split_and_fingerprint_validation() -> None:
    labels = np.array([0, 1] * 20)
    with pytest.raises(ValueError, match="held_out"):
        split_indices(labels, held_out=1.5, max_train=10, seed=0)
    with pytest.raises(ValueError, match="max_train"):
        split_indices(labels, held_out=0.5, max_train=0, seed=0)
    def fingerprint(texts: tuple[str, ...], labels: list[int]) -> str:
        return TextDataset(texts, np.array(labels), ("x", "y")).fingerprint

    assert fingerprint(("a", "b"), [0, 1]) != fingerprint(("a", "b"), [1, 0])
    assert fingerprint(("ab", "c"), [0, 0]) != fingerprint(("a", "bc"), [0, 0])


# --- config, registry, paths -------------------------------------------------------------------


def test_config_validation_and_round_trip() -> None:
    cfg = ZooConfig(lr=0.5, steps=7)
    assert ZooConfig.from_dict({**cfg.to_dict(), "unknown": 1}) == cfg
    assert json.loads(json.dumps(cfg.to_dict())) == cfg.to_dict()
    with pytest.raises(TypeError, match="steps"):
        ZooConfig(steps=2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="seed"):
        ZooConfig(seed=True)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        ZooConfig(steps=0)
    with pytest.raises(ValueError, match="held_out"):
        ZooConfig(held_out=1.0)
    with pytest.raises(ValueError, match="max_length"):
        ZooConfig(max_length=4096)
    with pytest.raises(ValueError,
                       match="unknown demo task 'imdb'; available: \\['drug-reviews', 'sms-spam'"):
        demo_dataset("imdb")


def test_cache_locations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNAPSE_LENS_CACHE", str(tmp_path / "env"))
    assert zoo_dir("trec-6") == tmp_path / "env" / "zoo" / "trec-6"
    assert zoo_dir("trec-6", tmp_path / "arg") == tmp_path / "arg" / "zoo" / "trec-6"
    # custom settings build next to (never over) the registered build
    assert zoo_dir("trec-6", config=ZOO_CONFIGS["trec-6"]) == zoo_dir("trec-6")
    custom = zoo_dir("trec-6", config=TINY)
    assert custom.parent == zoo_dir("trec-6").parent and custom.name.startswith("trec-6-")
    assert custom != zoo_dir("trec-6", config=dataclasses.replace(TINY, seed=4))
    monkeypatch.delenv("SYNAPSE_LENS_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "synapse_lens"
    assert read_manifest("sms-spam", tmp_path / "nothing") is None


# --- building and caching (real MiniLM, tiny settings) ----------------------------------------


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(path / "model.safetensors")


@pytest.fixture(scope="module")
def tiny_build(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    cache = tmp_path_factory.mktemp("zoo-cache")
    model, splits = load_demo_classifier("trec-6", cache_dir=cache, config=TINY, progress=False)
    return cache, model, splits


@pytest.mark.minilm
def test_build_writes_checkpoint_and_manifest(tiny_build) -> None:  # type: ignore[no-untyped-def]
    cache, model, splits = tiny_build
    target = zoo_dir("trec-6", cache, config=TINY)
    assert [p.name for p in (cache / "zoo").iterdir()] == [target.name]  # no temp dirs left
    manifest = read_manifest("trec-6", cache, config=TINY)
    assert manifest is not None
    assert manifest["task"] == "trec-6" and manifest["label_names"] == list(TRECS)
    assert manifest["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert len(manifest["base_model_sha256"]) == 64
    assert manifest["config"] == TINY.to_dict() and manifest["seed"] == 3
    assert manifest["steps"] == 2 and manifest["epochs"] == 1.0  # 2 x 16 = 32 texts
    assert manifest["n_train"] == 32 == len(splits.train.texts)
    assert manifest["n_held_out"] == len(splits.held_out.texts) > 100
    assert manifest["held_out_fingerprint"] == splits.held_out.fingerprint
    assert manifest["build_seconds"] > 0 and manifest["versions"]["torch"] == torch.__version__
    # the saved checkpoint is the evaluated model, and the hooked model agrees with it
    import transformers

    from synapse_lens import classifier_info
    from synapse_lens.demo.train import predict

    hf = transformers.AutoModelForSequenceClassification.from_pretrained(target).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(target)
    hf_pred = predict(hf, tokenizer, splits.held_out.texts, TINY, progress=False)
    # a reloaded near-tie may flip one prediction; the manifest rounds to 6 decimals
    recomputed = float((hf_pred == splits.held_out.labels).mean())
    assert abs(recomputed - manifest["held_out_accuracy"]) <= 1 / len(hf_pred) + 1e-6
    share = np.bincount(splits.held_out.labels).max() / len(splits.held_out.labels)
    assert manifest["held_out_majority_rate"] == pytest.approx(share, abs=1e-6)
    assert 0.0 <= manifest["held_out_macro_f1"] <= 1.0
    info = classifier_info(model)
    assert info.id2label == TRECS and info.source == str(target)
    enc = tokenizer(list(splits.held_out.texts), truncation=True, max_length=TINY.max_length,
                    padding=True, return_tensors="pt")
    with torch.inference_mode():
        logits = model(enc["input_ids"], attention_mask=enc["attention_mask"])
    assert np.array_equal(logits.argmax(-1).numpy(), hf_pred)


@pytest.mark.minilm
def test_cache_reuse_rebuild_and_determinism(tiny_build) -> None:  # type: ignore[no-untyped-def]
    cache, _, _ = tiny_build
    target = zoo_dir("trec-6", cache, config=TINY)
    first = _weights(target)
    stamp = {p.name: (p.stat().st_mtime_ns, p.stat().st_ino) for p in target.iterdir()}
    load_demo_classifier("trec-6", cache_dir=cache, config=TINY, progress=False)
    assert {p.name: (p.stat().st_mtime_ns, p.stat().st_ino)
            for p in target.iterdir()} == stamp  # reused, nothing rewritten
    # rebuild on request: a new directory is placed, with bit-identical weights (same seed);
    # the caller's global RNG is left as it was
    global_state = torch.random.get_rng_state()
    load_demo_classifier("trec-6", cache_dir=cache, config=TINY, progress=False, rebuild=True)
    assert torch.equal(torch.random.get_rng_state(), global_state)
    assert (target / "manifest.json").stat().st_ino != stamp["manifest.json"][1]
    again = _weights(target)
    assert first.keys() == again.keys()
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert [p.name for p in (cache / "zoo").iterdir()] == [target.name]


def test_stale_manifest_is_detected(tmp_path: Path) -> None:
    target = tmp_path / "trec-6"
    target.mkdir()
    (target / "config.json").write_text("{}")
    (target / "model.safetensors").write_bytes(b"")
    key = {"format": 1, "task": "trec-6", "config": TINY.to_dict(), "train_fingerprint": "ab"}
    assert zoo._stale_reason(target, {**key, "held_out_accuracy": 0.9}, key) is None
    assert zoo._stale_reason(target, None, key) == "no manifest"
    assert zoo._stale_reason(target, {**key, "train_fingerprint": "cd"}, key) == (
        "manifest train_fingerprint differs")
    assert zoo._stale_reason(target, {**key, "config": ZooConfig().to_dict()}, key) == (
        "manifest config differs")
    (target / "model.safetensors").unlink()
    assert zoo._stale_reason(target, key, key) == "checkpoint files missing"


@pytest.mark.minilm
def test_seed_changes_the_model(tiny_build, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cache, _, _ = tiny_build
    other = dataclasses.replace(TINY, seed=4)
    load_demo_classifier("trec-6", cache_dir=tmp_path, config=other, progress=False)
    assert read_manifest("trec-6", tmp_path, config=other)["seed"] == 4  # type: ignore[index]
    first = _weights(zoo_dir("trec-6", cache, config=TINY))
    changed = _weights(zoo_dir("trec-6", tmp_path, config=other))
    assert not torch.equal(first["classifier.weight"], changed["classifier.weight"])
    assert not torch.equal(first["bert.pooler.dense.weight"], changed["bert.pooler.dense.weight"])


@pytest.mark.minilm
def test_failed_build_leaves_nothing_behind(
    tiny_build, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    def fail(directory: Path, manifest: object) -> None:  # after training, weights written
        assert (directory / "model.safetensors").is_file()
        raise RuntimeError("disk full")

    monkeypatch.setattr(zoo, "_write_manifest", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        load_demo_classifier("trec-6", cache_dir=tmp_path, config=TINY, progress=False)
    # no zoo/trec-6, no temp dir, not even the zoo folder this build would have created
    assert not (tmp_path / "zoo").exists()
    # a failing rebuild keeps the previous good build intact
    cache, _, _ = tiny_build
    target = zoo_dir("trec-6", cache, config=TINY)
    before = (target / "manifest.json").read_bytes()
    with pytest.raises(RuntimeError, match="disk full"):
        load_demo_classifier("trec-6", cache_dir=cache, config=TINY, progress=False,
                             rebuild=True)
    assert (target / "manifest.json").read_bytes() == before
    assert [p.name for p in (cache / "zoo").iterdir()] == [target.name]


def test_bad_arguments_fail_before_building(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown demo task"):
        load_demo_classifier("mnist", cache_dir=tmp_path)
    with pytest.raises(TypeError, match="ZooConfig"):
        load_demo_classifier("trec-6", cache_dir=tmp_path, config={"steps": 2})  # type: ignore[arg-type]
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            load_demo_classifier("trec-6", cache_dir=tmp_path, device="cuda")
    assert not (tmp_path / "zoo").exists()


def test_drug_reviews_reader_unescapes_and_drops_neutral() -> None:
    from synapse_lens.demo.datasets import read_drug_reviews

    train, test = read_drug_reviews("train"), read_drug_reviews("test")
    assert train.label_names == test.label_names == ("negative", "positive")
    # the shipped files: 600 / 379 rows, of which 546 / 343 are negative or positive
    assert np.bincount(train.labels).tolist() == [161, 385]
    assert np.bincount(test.labels).tolist() == [95, 248]
    for data in (train, test):
        assert not any("&#" in t or "&quot;" in t or "&amp;" in t for t in data.texts)
        assert not any(t.startswith('"') or "\r" in t or "\n" in t for t in data.texts)
    assert any("didn't" in t for t in train.texts)  # &#039; unescaped
    with pytest.raises(ValueError, match="split must be one of"):
        read_drug_reviews("valid")


def test_drug_reviews_keep_their_own_held_out_file() -> None:
    from synapse_lens.demo.datasets import read_drug_reviews

    splits = demo_splits("drug-reviews")
    test = read_drug_reviews("test")
    assert set(splits.held_out.texts) <= set(test.texts)
    assert len(splits.held_out.texts) == 342  # one test review also occurs in the train file
    assert not {_key(t) for t in splits.train.texts} & {_key(t) for t in splits.held_out.texts}
    assert len(splits.train.texts) == 546 and demo_splits("drug-reviews").train.texts == (
        splits.train.texts)
    small = demo_splits("drug-reviews", ZooConfig(max_train=100))
    assert len(small.train.texts) == 100 and small.held_out.texts == splits.held_out.texts
    assert abs(np.mean(small.train.labels) - np.mean(splits.train.labels)) < 0.01  # stratified

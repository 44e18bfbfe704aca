"""The main job's command line on tiny models: run, compare, and every bad input."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synapse_lens.cli import main
from synapse_lens.testing import TINY_WORDS, tiny_classifier_dir

XSS = "<script>alert(1)</script>"
FAST = ["--k", "1,4", "--seeds", "2", "--class-k", "4", "--max-examples", "60", "--quiet"]


def _write_csv(path: Path, n: int = 60, n_classes: int = 3, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(TINY_WORDS, size=int(rng.integers(3, 12)))) for _ in range(n)]
    texts[0] = f"{XSS} free cash"
    labels = [f"class_{i % n_classes}" for i in range(n)]
    pd.DataFrame({"message": texts, "kind": labels}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    tiny_classifier_dir(root / "model", "bert", seed=2)
    _write_csv(root / "data.csv")
    return root


@pytest.fixture(scope="module")
def run_dir(workdir: Path) -> Path:
    out = workdir / "run"
    code = main(["run", "--model", str(workdir / "model"), "--data", str(workdir / "data.csv"),
                 "--text-column", "message", "--label-column", "kind", "--out", str(out), *FAST])
    assert code == 0
    return out


def test_run_writes_complete_run_directory(run_dir: Path) -> None:
    tables = {p.stem for p in (run_dir / "tables").glob("*.csv")}
    assert {"probes", "rankings", "ablation", "class_matrix", "redundancy",
            "redirection"} <= tables
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["model"]["architecture"] == "BertForSequenceClassification"
    assert summary["data"]["n"] == 60
    assert summary["config"]["ks"] == [1, 4]
    ablation = pd.read_csv(run_dir / "tables" / "ablation.csv")
    assert set(ablation["order"]) >= {"top", "random", "bottom"}
    assert set(ablation["position"]) == {"cls", "all"}  # both by default
    assert not list(run_dir.parent.glob(".run.*"))  # no temporary leftovers
    # every stress layer has its self-repair rows; the default grids ran and are recorded
    repair = pd.read_csv(run_dir / "tables" / "self_repair.csv")
    assert set(repair["hook_name"]) == set(ablation["hook_name"])
    grids = summary["grids"]
    assert grids["ks"] == [1, 4] and grids["positions"] == ["cls", "all"]
    assert grids["sigmas"][:5] == [0.0, 0.5, 1.0, 2.0, 4.0] and max(grids["sigmas"]) <= 64
    assert grids["eps"][:4] == [0.0, 0.1, 0.3, 1.0] and max(grids["eps"]) <= 8
    mb = pd.read_csv(run_dir / "tables" / "minimal_bias.csv")
    assert max(grids["biases"]) >= mb[mb["target"] == "__flip__"]["bias"].quantile(0.95)
    classes = pd.read_csv(run_dir / "tables" / "class_asymmetry.csv")
    assert {"random_low", "random_high", "verdict"} <= set(classes.columns)
    # targeted redirection: every class pair the clean model allows, against random edits
    vuln = pd.read_csv(run_dir / "tables" / "vulnerability.csv")
    assert {"weight", "logit"} <= set(vuln["space"])
    assert (vuln["source"] != vuln["target"]).all()
    assert grids["vulnerability"]["n_seeds"] == 5
    assert (run_dir / "tables" / "head_diagnostics.csv").exists()
    # the texts are short: nothing cut, and the summary says so
    assert summary["truncation"]["n_truncated"] == 0 and summary["truncation"]["n_texts"] == 60


def test_report_escapes_dataset_text(run_dir: Path) -> None:
    html = (run_dir / "report.html").read_text()
    assert XSS not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_same_seed_same_tables_byte_for_byte(workdir: Path, run_dir: Path) -> None:
    again = workdir / "again"
    assert main(["run", "--model", str(workdir / "model"), "--data", str(workdir / "data.csv"),
                 "--text-column", "message", "--label-column", "kind", "--out", str(again),
                 *FAST]) == 0
    for table in sorted((run_dir / "tables").glob("*.csv")):
        assert table.read_bytes() == (again / "tables" / table.name).read_bytes(), table.name


def test_compare_two_runs(workdir: Path, run_dir: Path, capsys: pytest.CaptureFixture) -> None:
    out = workdir / "cmp"
    assert main(["compare", str(run_dir), str(run_dir), "--out", str(out)]) == 0
    assert (out / "report.html").is_file()
    assert str(out) in capsys.readouterr().out


def _bad_run(workdir: Path, out: Path, **override: str) -> int:
    args = {"--model": str(workdir / "model"), "--data": str(workdir / "data.csv"),
            "--text-column": "message", "--label-column": "kind", "--out": str(out)}
    args.update(override)
    return main(["run", *[x for kv in args.items() for x in kv], *FAST])


@pytest.mark.parametrize("case", ["missing_file", "wrong_text_column", "wrong_label_column",
                                  "unsupported_model", "empty_data", "one_class", "cuda"])
def test_bad_input_exits_nonzero_and_writes_nothing(
    workdir: Path, tmp_path: Path, case: str, capsys: pytest.CaptureFixture
) -> None:
    import torch

    out = tmp_path / "out"
    override: dict[str, str] = {}
    if case == "missing_file":
        override["--data"] = str(tmp_path / "nope.csv")
    elif case == "wrong_text_column":
        override["--text-column"] = "text"
    elif case == "wrong_label_column":
        override["--label-column"] = "label"
    elif case == "unsupported_model":
        (tmp_path / "gpt").mkdir()
        (tmp_path / "gpt" / "config.json").write_text(
            json.dumps({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}))
        override["--model"] = str(tmp_path / "gpt")
    elif case == "empty_data":
        (tmp_path / "empty.csv").write_text("message,kind\n")
        override["--data"] = str(tmp_path / "empty.csv")
    elif case == "one_class":
        pd.DataFrame({"message": ["free cash"] * 30, "kind": ["class_0"] * 30}).to_csv(
            tmp_path / "one.csv", index=False)
        override["--data"] = str(tmp_path / "one.csv")
    elif case == "cuda":
        if torch.cuda.is_available():
            pytest.skip("a GPU is present: --device cuda is valid here")
        override["--device"] = "cuda"
    if case == "cuda":
        code = main(["run", "--model", str(workdir / "model"), "--data",
                     str(workdir / "data.csv"), "--text-column", "message", "--label-column",
                     "kind", "--out", str(out), "--device", "cuda", "--quiet"])
    else:
        code = _bad_run(workdir, out, **override)
    err = capsys.readouterr().err
    assert code != 0
    assert err.startswith("synapse-lens: error:")
    assert not out.exists()
    assert list(tmp_path.glob(".out.*")) == []


def test_unwritable_output_directory(workdir: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code = _bad_run(workdir, blocker / "run")
    assert code != 0
    assert "not a directory" in capsys.readouterr().err
    assert blocker.read_text() == "not a directory"


def test_parser_rejects_bad_k(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--model", "m", "--data", "d", "--text-column", "t", "--label-column", "l",
              "--out", "o", "--k", "a,b"])
    assert "comma-separated integers" in capsys.readouterr().err


def test_help_and_version_load_no_model_stack() -> None:
    """`--help` and `--version` answer from argparse alone: no torch, transformers or pandas
    import (that is what made help take seconds)."""
    import subprocess
    import sys

    import synapse_lens

    code = ("import sys, contextlib, io\n"
            "from synapse_lens.cli import main\n"
            "for argv in (['--help'], ['demo', '--help'], ['run', '--help'], ['--version']):\n"
            "    with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "        try:\n"
            "            main(argv)\n"
            "        except SystemExit as e:\n"
            "            assert e.code == 0, argv\n"
            "    print(out.getvalue())\n"
            "heavy = [m for m in ('torch', 'transformers', 'pandas', 'transformer_lens')\n"
            "         if m in sys.modules]\n"
            "print('HEAVY', heavy)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert "HEAVY []" in proc.stdout, proc.stdout[-500:]
    assert f"synapse-lens {synapse_lens.__version__}" in proc.stdout
    assert "``" not in proc.stdout  # plain text, no reST markup


def test_every_option_has_help() -> None:
    import argparse

    from synapse_lens.cli import build_parser

    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subs.choices.items():
        for action in sub._actions:
            if not isinstance(action, argparse._HelpAction):
                assert action.help, f"{name} {action.option_strings or action.dest} has no help"


def test_demo_tasks_are_the_registered_ones() -> None:
    from synapse_lens import cli
    from synapse_lens.demo.datasets import DEMO_TASKS
    from synapse_lens.demo.zoo import ZOO_CONFIGS

    assert set(cli.DEMO_TASKS) == set(DEMO_TASKS) == set(ZOO_CONFIGS)


def test_run_synapse_returns_a_lazy_path_like_result(workdir: Path, run_dir: Path) -> None:
    import os

    from synapse_lens.pipeline.result import LazyTables, RunResult

    result = RunResult(run_dir)  # what run_synapse returns (checked below on a fresh run)
    assert os.fspath(result) == str(run_dir) and result.name == run_dir.name
    assert (result / "summary.json").is_file() and result.report.is_file()
    lazy = LazyTables(run_dir / "tables")
    assert not lazy._loaded  # nothing read yet
    assert list(lazy["probes"].columns)[:2] == ["hook_name", "layer"]
    assert set(lazy._loaded) == {"probes"} and lazy["probes"] is lazy["probes"]  # read once
    assert "vulnerability" in result.tables and len(result.tables) >= 20
    text = repr(result)
    assert text.startswith(f"RunResult({str(run_dir)!r}, ") and "n_eval=" in text
    with pytest.raises(KeyError, match="no table 'nope'"):
        result.tables["nope"]


def test_run_synapse_returns_run_result(workdir: Path, tmp_path: Path) -> None:
    from synapse_lens import RunConfig, load_classifier, load_texts, run_synapse
    from synapse_lens.pipeline.result import RunResult

    model = load_classifier(workdir / "model")
    data = load_texts(workdir / "data.csv", "message", "kind")
    config = RunConfig(ks=(1,), n_seeds=2, class_k=2, max_examples=40, rankings=("probe",),
                       exact=False, positions=("cls",), n_boot=2)
    result = run_synapse(model, data, tmp_path / "api-run", config, progress=False)
    assert isinstance(result, RunResult) and result.summary["schema"] == "synapse_lens.run/1"
    assert result.summary["data"]["n"] == 40
    # one schema: the report reads back every table the pipeline wrote (noise_summary included)
    from synapse_lens.schema import TABLES_DIR, read_run

    written = {p.stem for p in (result.path / TABLES_DIR).glob("*.csv")}
    assert "noise_summary" in written and set(read_run(result.path)[0]) == written


def _fake_zoo(monkeypatch: pytest.MonkeyPatch, workdir: Path) -> list[str]:
    """``load_demo_classifier`` answering every task with the tiny model and the CSV."""
    from types import SimpleNamespace

    from synapse_lens import load_classifier, load_texts
    from synapse_lens.demo import zoo

    model = load_classifier(workdir / "model")
    data = load_texts(workdir / "data.csv", "message", "kind")
    loaded: list[str] = []

    def fake(task: str, **_: object) -> tuple[object, object]:
        loaded.append(task)
        return model, SimpleNamespace(held_out=data)

    monkeypatch.setattr(zoo, "load_demo_classifier", fake)
    monkeypatch.setattr(zoo, "read_manifest", lambda task: {"task": task})
    return loaded


def test_demo_without_task_runs_every_task_and_compares_them(
        workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    from synapse_lens.cli import DEMO_TASKS

    loaded = _fake_zoo(monkeypatch, workdir)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "mine.txt").write_text("keep me")  # the folder may hold other files
    fast = ["--k", "1", "--seeds", "2", "--class-k", "2", "--max-examples", "40",
            "--rankings", "probe", "--no-exact", "--positions", "cls", "--quiet"]
    assert main(["demo", "--out", str(tmp_path / "runs"), *fast]) == 0
    assert loaded == list(DEMO_TASKS)
    for task in DEMO_TASKS:
        summary = json.loads((tmp_path / "runs" / task / "summary.json").read_text())
        assert summary["task"] == task and (tmp_path / "runs" / task / "report.html").is_file()
    manifest = json.loads((tmp_path / "runs" / "compare" / "comparison.json").read_text())
    assert manifest["runs"] == [str(tmp_path / "runs" / t) for t in DEMO_TASKS]
    assert (tmp_path / "runs" / "mine.txt").read_text() == "keep me"
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(DEMO_TASKS) + 1 and "compare" in out[-1]
    # a second demo refuses to replace the runs without --overwrite, before loading a model
    loaded.clear()
    assert main(["demo", "--out", str(tmp_path / "runs"), *fast]) == 2
    assert loaded == [] and "--overwrite" in capsys.readouterr().err


def test_demo_checks_the_comparison_folder_before_any_run(
        workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = _fake_zoo(monkeypatch, workdir)
    (tmp_path / "compare").mkdir()
    (tmp_path / "compare" / "notes.md").write_text("mine")
    assert main(["demo", "--out", str(tmp_path), "--quiet"]) == 2
    assert loaded == [] and sorted(p.name for p in tmp_path.iterdir()) == ["compare"]
    assert (tmp_path / "compare" / "notes.md").read_text() == "mine"


QUICK = ["--k", "1", "--seeds", "2", "--class-k", "2", "--max-examples", "40",
         "--rankings", "probe", "--no-exact", "--positions", "cls", "--quiet"]


def _relabelled(workdir: Path, tmp_path: Path, mapping: dict[str, object]) -> Path:
    frame = pd.read_csv(workdir / "data.csv")
    frame["kind"] = frame["kind"].map(mapping)
    path = tmp_path / "relabelled.csv"
    frame.to_csv(path, index=False)
    return path


def _run_args(workdir: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return ["run", "--model", str(workdir / "model"), "--data", str(data), "--text-column",
            "message", "--label-column", "kind", "--out", str(out), *extra, *QUICK]


def test_integer_labels_are_class_ids_of_the_checkpoint(workdir: Path, tmp_path: Path) -> None:
    data = _relabelled(workdir, tmp_path, {f"class_{i}": i for i in range(3)})
    assert main(_run_args(workdir, data, tmp_path / "ids")) == 0
    summary = json.loads((tmp_path / "ids" / "summary.json").read_text())
    reference = pd.read_csv(workdir / "data.csv")["kind"].value_counts()
    counts = {name: int(n) for name, n in reference.items()}
    assert summary["data"]["n"] == 40 and set(summary["data"]["class_counts"]) == set(counts)


def test_label_names_map_other_spellings(workdir: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture) -> None:
    data = _relabelled(workdir, tmp_path, {"class_0": "neg", "class_1": "neu", "class_2": "pos"})
    assert main(_run_args(workdir, data, tmp_path / "plain")) == 2  # names the model lacks
    assert "--label-names" in capsys.readouterr().err
    assert main(_run_args(workdir, data, tmp_path / "named", "--label-names",
                          "neg,neu,pos")) == 0
    summary = json.loads((tmp_path / "named" / "summary.json").read_text())
    assert set(summary["data"]["class_counts"]) == {"class_0", "class_1", "class_2"}
    for bad, message in ((["--label-names", "neg,pos"], "not among --label-names"),
                         (["--label-names", "neg,neu,pos,x"], "each of the model's 3 classes"),
                         (["--label-names", "a,a"], "distinct")):
        with contextlib.suppress(SystemExit):
            assert main(_run_args(workdir, data, tmp_path / "bad", *bad)) == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "bad").exists()


def test_bare_encoder_with_a_head_file(workdir: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture) -> None:
    import torch
    from safetensors.torch import save_file

    from synapse_lens.testing import tiny_hf_classifier, tiny_tokenizer

    encoder_dir = tmp_path / "encoder"
    tiny_hf_classifier("bert", with_head=False, seed=5).save_pretrained(encoder_dir)
    tiny_tokenizer("bert").save_pretrained(encoder_dir)
    gen = torch.Generator().manual_seed(0)
    head = {"weight": torch.randn(3, 32, generator=gen), "bias": torch.randn(3, generator=gen)}
    save_file(head, str(tmp_path / "head.safetensors"))
    args = ["run", "--model", str(encoder_dir), "--data", str(workdir / "data.csv"),
            "--text-column", "message", "--label-column", "kind", "--head",
            str(tmp_path / "head.safetensors"), "--label-names", "class_0,class_1,class_2",
            "--pooling", "mean", "--normalize", "--out", str(tmp_path / "run"), *QUICK]
    assert main(args) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["model"]["architecture"] == "BertModel+head"
    assert summary["model"]["pooling"] == "mean+l2"
    assert "mean+l2" in (tmp_path / "run" / "report.html").read_text()
    # refused before any model loads: options without a head, a head of the wrong format
    save_file({"weight": head["weight"]}, str(tmp_path / "half.safetensors"))
    (tmp_path / "head.pt").write_bytes(b"not safetensors")
    for bad, message in ((["--pooling", "mean"], "--pooling and --normalize describe"),
                         (["--head", str(tmp_path / "half.safetensors")], "exactly 'weight'"),
                         (["--head", str(tmp_path / "head.pt")], "must be a .safetensors"),
                         (["--head", str(tmp_path / "head.safetensors"), "--label-names", "a,b"],
                          "has 3 outputs")):
        assert main(_run_args(workdir, workdir / "data.csv", tmp_path / "bad", *bad)) == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize(("layers", "hooks"), [("1", {1}), ("embed,1", {-1, 1}), ("0,1", {0, 1})])
def test_layers_analyses_what_it_names(workdir: Path, tmp_path: Path, layers: str,
                                       hooks: set[int]) -> None:
    out = tmp_path / "run"
    assert main(_run_args(workdir, workdir / "data.csv", out, "--layers", layers)) == 0
    for table in ("probes", "rankings", "stability"):
        frame = pd.read_csv(out / "tables" / f"{table}.csv")
        assert set(frame["layer"].dropna().astype(int)) == hooks, table
    config = json.loads((out / "summary.json").read_text())["config"]
    assert config["embeddings"] == ("embed" in layers)


def test_layers_option_is_checked(capsys: pytest.CaptureFixture) -> None:
    for bad, message in (("embed", "at least one encoder layer"),
                         ("embed,1,embed", "listed twice"), ("-1", "no negative indexing")):
        with pytest.raises(SystemExit):
            main(["demo", "--layers", bad])
        assert message in capsys.readouterr().err


def test_max_classes_caps_per_class_work_to_the_most_frequent_classes(tmp_path: Path) -> None:
    """Five classes present, ``--max-classes 3``: per-class rankings, the class matrix, the
    classifier-row, logit-bias and targeted redirection cover the three most frequent classes
    (the summary and the report say which); metrics per class still cover all five."""
    from synapse_lens.schema import FLIP, GLOBAL, read_run

    tiny_classifier_dir(tmp_path / "model", "bert", n_classes=5, seed=3)
    rng = np.random.default_rng(1)
    counts = {"class_0": 8, "class_1": 20, "class_2": 6, "class_3": 14, "class_4": 12}
    labels = [c for c, n in counts.items() for _ in range(n)]
    texts = [" ".join(rng.choice(TINY_WORDS, size=int(rng.integers(3, 12)))) for _ in labels]
    pd.DataFrame({"message": texts, "kind": labels}).to_csv(tmp_path / "five.csv", index=False)
    out = tmp_path / "capped"
    assert main(["run", "--model", str(tmp_path / "model"), "--data", str(tmp_path / "five.csv"),
                 "--text-column", "message", "--label-column", "kind", "--out", str(out),
                 *FAST, "--rankings", "probe", "--no-exact",
                 "--positions", "cls", "--max-classes", "3"]) == 0
    tables, summary = read_run(out)
    top = {"class_1", "class_3", "class_4"}
    assert summary["data"]["per_class"] == sorted(top)
    assert summary["data"]["n_classes_present"] == 5
    assert set(tables["rankings"]["class"]) == top | {GLOBAL}
    assert set(tables["class_matrix"]["ablated_class"]) == top | {"__random__"}
    assert set(tables["overlap"]["class_a"]) | set(tables["overlap"]["class_b"]) <= top
    rows = tables["redirection"]
    assert set(rows[rows["edit"] == "class_row"]["target"]) == top
    assert set(tables["redirection_logit"]["target"]) == top
    assert set(tables["minimal_bias"]["target"]) <= top | {FLIP}
    vuln = tables["vulnerability"]
    assert set(vuln["target"]) <= top and set(vuln["source"]) <= top
    recall = tables["ablation"][tables["ablation"]["metric"] == "recall"]
    assert recall.empty or set(recall["class"]) == set(counts)  # metrics still cover all five
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "covers the 3 most frequent of the 5 classes present" in report
    # without a cap every class present gets its per-class work
    assert main(["run", "--model", str(tmp_path / "model"), "--data", str(tmp_path / "five.csv"),
                 "--text-column", "message", "--label-column", "kind", "--out",
                 str(tmp_path / "all"), *FAST, "--rankings", "probe", "--no-exact",
                 "--positions", "cls", "--max-classes", "0"]) == 0
    tables, summary = read_run(tmp_path / "all")
    assert set(tables["rankings"]["class"]) == set(counts) | {GLOBAL}
    assert "most frequent of the" not in (tmp_path / "all" / "report.html").read_text()

"""Careless and hostile input: nothing of the user's is lost, no model directory's code runs,
a user's mistake is one line on stderr and exit 2 before any work starts."""

from __future__ import annotations

import codecs
import json
import logging
import os
import pickle
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import synapse_lens.atomic as atomic
from synapse_lens.atomic import atomic_directory, check_output_dir, recover_interrupted
from synapse_lens.cli import main
from synapse_lens.testing import TINY_WORDS, tiny_classifier_dir, tiny_tokenizer

# the policy and error checks need one ranking method (the default set runs in test_cli)
FAST = ["--k", "1,4", "--seeds", "2", "--class-k", "4", "--max-examples", "60", "--quiet",
        "--rankings", "probe", "--no-exact", "--sigmas", "0,2", "--eps", "0,0.5",
        "--positions", "cls"]
MARK = dict(marker="summary.json", schema="synapse_lens.run/1")


def _texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(TINY_WORDS, size=int(rng.integers(3, 12)))) for _ in range(n)]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("reliability")
    tiny_classifier_dir(root / "model", "bert", seed=2)
    pd.DataFrame({"message": _texts(60), "kind": [f"class_{i % 3}" for i in range(60)]}).to_csv(
        root / "data.csv", index=False)
    return root


def _run(work: Path, out: Path | str, *extra: str, model: Path | None = None,
         data: Path | None = None) -> int:
    return main(["run", "--model", str(model or work / "model"), "--data",
                 str(data or work / "data.csv"), "--text-column", "message", "--label-column",
                 "kind", "--out", str(out), *FAST, *extra])


def _one_line_error(err: str) -> str:
    """The error line of a refused command's stderr (progress bars may come before it)."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("synapse-lens:")]
    assert len(lines) == 1 and lines[0].startswith("synapse-lens: error:"), err
    assert err.endswith(lines[0] + "\n"), err  # the last thing printed
    return lines[0]


def _snapshot(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file()}


# --- 1. the output policy --------------------------------------------------------------------

def test_non_empty_directory_is_refused_and_untouched(work: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    (out / "sub").mkdir()
    (out / "sub" / "data.bin").write_bytes(b"\x00\x01")
    before = _snapshot(out)
    assert _run(work, out) == 2
    assert "not empty and is not a synapse_lens output" in _one_line_error(capsys.readouterr().err)
    assert _snapshot(out) == before
    assert _run(work, out, "--overwrite") == 2  # --overwrite never applies to foreign files
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_model_and_data_directories_are_refused(work: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    model = tmp_path / "model"
    shutil.copytree(work / "model", model)
    before = _snapshot(model)
    for out in (model, tmp_path, work / "data.csv"):
        assert _run(work, out, "--overwrite", model=model) == 2
        _one_line_error(capsys.readouterr().err)
    assert _snapshot(model) == before


def test_current_directory_and_its_parents_are_refused(
    work: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    cwd = tmp_path / "project"
    cwd.mkdir()
    (cwd / "notes.txt").write_text("keep me")
    monkeypatch.chdir(cwd)
    for out in (".", "..", str(cwd)):
        assert _run(work, out, "--overwrite") == 2
        assert "current directory" in _one_line_error(capsys.readouterr().err)
    assert sorted(os.listdir(cwd)) == ["notes.txt"]
    assert sorted(os.listdir(tmp_path)) == ["project"]


def test_earlier_run_needs_overwrite_and_is_replaced_whole(
    work: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "run"
    assert _run(work, out) == 0
    first = _snapshot(out)
    (out / "tables" / "stale.csv").write_text("from an older version")
    assert _run(work, out) == 2
    assert "--overwrite" in _one_line_error(capsys.readouterr().err)
    assert (out / "tables" / "stale.csv").exists()
    assert _run(work, out, "--overwrite") == 0
    assert _snapshot(out) == first  # the new run, complete, and nothing of the old one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_empty_directory_is_accepted(work: Path, tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    assert _run(work, out) == 0
    assert (out / "summary.json").is_file()


def test_failed_run_leaves_the_file_system_as_it_was(work: Path, tmp_path: Path) -> None:
    out = tmp_path / "a" / "b" / "run"
    assert _run(work, out, "--k", "1,999") == 2
    assert list(tmp_path.iterdir()) == []  # not even the parents it would have created


def test_compare_follows_the_same_policy(work: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    assert _run(work, run) == 0
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    for out in (other, run, tmp_path):
        assert main(["compare", str(run), str(run), "--out", str(out)]) == 2
        _one_line_error(capsys.readouterr().err)
    assert (other / "keep.txt").read_text() == "x" and (run / "summary.json").is_file()
    cmp = tmp_path / "cmp"
    assert main(["compare", str(run), str(run), "--out", str(cmp)]) == 0
    assert json.loads((cmp / "comparison.json").read_text())["schema"] == (
        "synapse_lens.comparison/1")
    assert main(["compare", str(run), str(run), "--out", str(cmp)]) == 2
    assert main(["compare", str(run), str(run), "--out", str(cmp), "--overwrite"]) == 0


def test_symlink_file_and_mount_point_are_refused(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="symbolic link"):
        check_output_dir(tmp_path / "link", **MARK)
    with pytest.raises(FileExistsError, match="not a directory"):
        check_output_dir(tmp_path / "file", **MARK)
    with pytest.raises(ValueError, match="mount point|current directory"):
        check_output_dir("/proc", **MARK, overwrite=True)


# --- 6. atomic writes: interrupted and killed -------------------------------------------------

_KILL_MID_WRITE = """
import os, sys, time
from synapse_lens.atomic import atomic_directory
with atomic_directory(sys.argv[1]) as tmp:
    (tmp / "summary.json").write_text('{"schema": "synapse_lens.run/1"}')
    print("ready", flush=True)
    time.sleep(60)
"""

_KILL_BETWEEN_RENAMES = """
import os, signal, sys
import synapse_lens.atomic as atomic
from synapse_lens.atomic import atomic_directory
real, calls = os.replace, []
def replace(src, dst):
    calls.append(src)
    if len(calls) == 2:  # the old run is aside, the new one not yet in place
        os.kill(os.getpid(), signal.SIGKILL)
    real(src, dst)
atomic.os.replace = replace
with atomic_directory(sys.argv[1]) as tmp:
    (tmp / "summary.json").write_text('{"schema": "synapse_lens.run/1", "new": 1}')
"""


def _python(code: str, *args: str, **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", code, *args], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)  # type: ignore[call-overload]


def test_sigkill_mid_write_leftover_is_removed_by_the_next_run(tmp_path: Path) -> None:
    target = tmp_path / "run"
    proc = _python(_KILL_MID_WRITE, str(target))
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    leftovers = [p.name for p in tmp_path.iterdir()]
    assert len(leftovers) == 1 and leftovers[0].startswith(".run.synapse-partial-")
    assert not target.exists()
    check_output_dir(target, **MARK)  # the next run's first step
    assert list(tmp_path.iterdir()) == []


def test_sigkill_between_renames_restores_the_earlier_run(tmp_path: Path) -> None:
    target = tmp_path / "run"
    target.mkdir()
    (target / "summary.json").write_text('{"schema": "synapse_lens.run/1", "old": 1}')
    proc = _python(_KILL_BETWEEN_RENAMES, str(target))
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not target.exists()  # the window: the old run is aside, the new one is not in place
    assert recover_interrupted(target)
    assert json.loads((target / "summary.json").read_text()) == {
        "schema": "synapse_lens.run/1", "old": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_ctrl_c_between_renames_restores_the_earlier_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "run"
    target.mkdir()
    (target / "summary.json").write_text("old")
    real, calls = os.replace, []

    def replace(src: str, dst: str) -> None:
        calls.append(src)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt), atomic_directory(target) as tmp:
        (tmp / "summary.json").write_text("new")
    monkeypatch.undo()
    assert (target / "summary.json").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_a_running_writer_is_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "run"
    proc = _python(_KILL_MID_WRITE, str(target))
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        assert recover_interrupted(target) == []
        assert len(list(tmp_path.iterdir())) == 1
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_ctrl_c_exits_130_without_traceback_and_writes_nothing(work: Path,
                                                               tmp_path: Path) -> None:
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "synapse_lens", "run", "--model", str(work / "model"), "--data",
           str(work / "data.csv"), "--text-column", "message", "--label-column", "kind",
           "--out", str(out), "--k", "1,4", "--seeds", "2", "--class-k", "4"]
    proc = subprocess.Popen(cmd, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:  # wait until the analysis has started
        seen.append(line)
        if "caching [CLS] activations" in line:
            break
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=120)
    err = "".join(seen) + rest
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    assert list(tmp_path.iterdir()) == []


# --- 2. a model directory's code never runs ----------------------------------------------------

def test_remote_code_directory_is_refused_without_asking(work: Path, tmp_path: Path) -> None:
    model = tmp_path / "custom"
    shutil.copytree(work / "model", model)
    config = json.loads((model / "config.json").read_text())
    config.update(model_type="evilbert", auto_map={"AutoConfig": "evil.EvilConfig"})
    (model / "config.json").write_text(json.dumps(config))
    pwned = tmp_path / "pwned"
    (model / "evil.py").write_text(textwrap.dedent(f"""
        open({str(pwned)!r}, "w").write("code ran")
        from transformers import BertConfig
        class EvilConfig(BertConfig):
            model_type = "evilbert"
    """))
    proc = subprocess.run(
        [sys.executable, "-m", "synapse_lens", "run", "--model", str(model), "--data",
         str(work / "data.csv"), "--text-column", "message", "--label-column", "kind",
         "--out", str(tmp_path / "run"), "--quiet"],
        input="y\ny\n", text=True, capture_output=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "never runs code from a model directory" in _one_line_error(proc.stderr)
    assert not pwned.exists() and not (tmp_path / "run").exists()


# --- 5. refused inputs are one line, exit 2 ---------------------------------------------------

class _Evil:
    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[object, tuple[str, ...]]:
        return (os.system, (f"touch {self.path}",))


def test_malicious_pickle_is_refused_in_one_line(work: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    model = tmp_path / "pickled"
    shutil.copytree(work / "model", model)
    (model / "model.safetensors").unlink()
    pwned = tmp_path / "pwned"
    with open(model / "pytorch_model.bin", "wb") as fh:
        pickle.dump({"weight": _Evil(pwned)}, fh)
    assert _run(work, tmp_path / "run", model=model) == 2
    assert "refused to load" in _one_line_error(capsys.readouterr().err)
    assert not pwned.exists() and not (tmp_path / "run").exists()


def test_deeply_nested_tokenizer_json_is_one_line(work: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    model = tmp_path / "nested"
    shutil.copytree(work / "model", model)
    (model / "tokenizer.json").write_text("[" * 200_000 + "]" * 200_000)
    assert _run(work, tmp_path / "run", model=model) == 2
    assert "nested too deeply" in _one_line_error(capsys.readouterr().err)


def test_tokenizer_larger_than_the_embedding_table_is_refused_at_load(
    work: Path, tmp_path: Path, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    model = tmp_path / "bigvocab"
    shutil.copytree(work / "model", model)
    tokenizer = tiny_tokenizer("bert")
    tokenizer.add_tokens([f"extra{i}" for i in range(50)])
    tokenizer.save_pretrained(model)
    with caplog.at_level(logging.INFO):
        assert main(["run", "--model", str(model), "--data", str(work / "data.csv"),
                     "--text-column", "message", "--label-column", "kind", "--out",
                     str(tmp_path / "run"), "--quiet"]) == 2
    assert "embedding table" in _one_line_error(capsys.readouterr().err)
    assert not any("caching" in r.getMessage() for r in caplog.records)


# --- 3. left padding -------------------------------------------------------------------------

def test_left_padding_is_refused(tiny_bert: object) -> None:
    import torch

    model: torch.nn.Module = tiny_bert  # type: ignore[assignment]
    texts = ["free cash prize call now please", "hi"]
    with pytest.raises(ValueError, match="right-padded|padded on the right"):
        model(texts, padding_side="left")
    tok = model.tokenizer  # type: ignore[attr-defined]
    enc = tok(texts, padding=True, return_tensors="pt")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    lengths = mask.sum(1)
    left_ids, left_mask = torch.full_like(ids, tok.pad_token_id), torch.zeros_like(mask)
    for row, n in enumerate(lengths.tolist()):
        left_ids[row, ids.shape[1] - n:] = ids[row, :n]
        left_mask[row, ids.shape[1] - n:] = 1
    with pytest.raises(ValueError, match="right-padded"):
        model(left_ids, attention_mask=left_mask)
    # right padding still gives the single-text answers
    batch = model(ids, attention_mask=mask)
    for row, text in enumerate(texts):
        torch.testing.assert_close(batch[row], model([text])[0], atol=1e-5, rtol=0)


# --- 4. public names -------------------------------------------------------------------------

def test_every_public_name_is_what_all_promises_after_importing_every_submodule() -> None:
    code = textwrap.dedent("""
        import importlib, pkgutil, types
        import synapse_lens as sl
        for info in pkgutil.walk_packages(sl.__path__, "synapse_lens."):
            if info.name.endswith("__main__"):
                continue
            try:
                importlib.import_module(info.name)
            except ImportError as err:  # the other TransformerLens backend's modules
                if "TransformerLens" not in str(err) and "transformer_lens" not in str(err):
                    raise
        bad = []
        for name in sl.__all__:
            value = getattr(sl, name)
            expected = getattr(importlib.import_module(sl._EXPORTS[name]), name)
            if isinstance(value, types.ModuleType) or value is not expected:
                bad.append(name)
        print(bad)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# --- 7 and 9. options checked against the model before any work --------------------------------

def test_k_larger_than_the_width_fails_before_caching(
    work: Path, tmp_path: Path, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        assert main(["run", "--model", str(work / "model"), "--data", str(work / "data.csv"),
                     "--text-column", "message", "--label-column", "kind", "--out",
                     str(tmp_path / "run"), "--k", "8,100"]) == 2
    err = _one_line_error(capsys.readouterr().err)
    assert "[100]" in err and "width 32" in err
    assert not any("caching" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("option", [["--layers", "-1"], ["--layers", "1,1"], ["--k", "0"],
                                    ["--seeds", "0"], ["--max-examples", "5"],
                                    ["--max-classes", "1"], ["--batch-size", "0"]])
def test_bad_option_values_are_refused_by_the_parser(option: list[str],
                                                     capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--model", "m", "--data", "d", "--text-column", "t", "--label-column",
              "l", "--out", "o", *option])
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_demo_options_are_checked_before_fine_tuning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("SYNAPSE_LENS_CACHE", str(cache))
    assert main(["demo", "--out", str(tmp_path / "run"), "--k", "8,500", "--quiet"]) == 2
    assert "ks [500] exceed the width 384" in _one_line_error(capsys.readouterr().err)
    assert list(cache.iterdir()) == [] and not (tmp_path / "run").exists()


def test_layers_that_do_not_exist_fail_before_caching(work: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    assert _run(work, tmp_path / "run", "--layers", "0,7") == 2
    assert "layers [7] do not exist" in _one_line_error(capsys.readouterr().err)
    assert _run(work, tmp_path / "run", "--layers", "0", "--stress-layers", "1") == 2
    assert "not among the analysed layers" in _one_line_error(capsys.readouterr().err)


def test_one_example_class_is_named_before_caching(
    work: Path, tmp_path: Path, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    labels = ["class_0", "class_2"] * 15 + ["class_1"]
    data = tmp_path / "rare.csv"
    pd.DataFrame({"message": _texts(31), "kind": labels}).to_csv(data, index=False)
    with caplog.at_level(logging.INFO):
        assert main(["run", "--model", str(work / "model"), "--data", str(data),
                     "--text-column", "message", "--label-column", "kind", "--out",
                     str(tmp_path / "run"), "--k", "1,4"]) == 2
    err = _one_line_error(capsys.readouterr().err)
    assert "class_1" in err and "'class_0': 15" in err
    assert not any("caching" in r.getMessage() for r in caplog.records)


def test_too_little_disk_space_is_reported_before_any_work(
    work: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(atomic.shutil, "disk_usage",
                        lambda path: usage._replace(free=2**20))  # a nearly full disk
    with caplog.at_level(logging.INFO):
        assert main(["run", "--model", str(work / "model"), "--data", str(work / "data.csv"),
                     "--text-column", "message", "--label-column", "kind", "--out",
                     str(tmp_path / "run")]) == 2
    assert "MiB free" in _one_line_error(capsys.readouterr().err)
    assert not any("caching" in r.getMessage() for r in caplog.records)  # refused up front
    assert list(tmp_path.iterdir()) == []


# --- 8. TSV quoting, 10. encodings, labels, NUL bytes, --quiet, --max-examples 0 ----------------

def test_tsv_quotes_never_swallow_rows(tmp_path: Path) -> None:
    from synapse_lens.data import load_texts

    rows = [(f"review {i} is fine", "pos" if i % 2 else "neg") for i in range(80)]
    rows[3] = ('"Great" is what I said, then it broke', "neg")   # quote at the start
    rows[10] = ('it was "ok", I guess', "pos")                  # quotes in the middle
    rows[11] = ('"', "neg")                                     # a lone quote
    rows[20] = ('"a ""quoted"" review"', "pos")                 # a wrapped field
    path = tmp_path / "reviews.tsv"
    path.write_text("review\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows))
    ds = load_texts(path, "review", "label")
    assert len(ds) == 80
    expected = [t for t, _ in rows]
    expected[20] = 'a "quoted" review'
    assert list(ds.texts) == expected
    assert [ds.label_names[i] for i in ds.labels] == [y for _, y in rows]


def test_encodings_are_named_and_selectable(work: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture) -> None:
    from synapse_lens.data import load_texts

    frame = pd.DataFrame({"message": ["café prix gratuit", "à demain"] * 15,
                          "kind": ["spam", "ham"] * 15})
    cp1252 = tmp_path / "cp1252.csv"
    cp1252.write_bytes(frame.to_csv(index=False).encode("cp1252"))
    with pytest.raises(ValueError, match=r"cp1252\.csv' is not valid utf-8.*--encoding"):
        load_texts(cp1252, "message", "kind")
    assert load_texts(cp1252, "message", "kind", encoding="cp1252").texts[0] == "café prix gratuit"
    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes(codecs.BOM_UTF16_LE + frame.to_csv(index=False).encode("utf-16-le"))
    with pytest.raises(ValueError, match="UTF-16"):
        load_texts(utf16, "message", "kind")
    assert load_texts(utf16, "message", "kind", encoding="utf-16").texts[1] == "à demain"
    bom = tmp_path / "bom.csv"
    bom.write_bytes(codecs.BOM_UTF8 + frame.to_csv(index=False).encode())
    assert len(load_texts(bom, "message", "kind")) == 30  # first column name without the BOM
    assert _run(work, tmp_path / "run", data=cp1252) == 2
    assert "cp1252.csv" in _one_line_error(capsys.readouterr().err)


def test_labels_are_stripped(tmp_path: Path) -> None:
    from synapse_lens.data import load_texts

    path = tmp_path / "d.csv"
    path.write_text("t,y\na,spam \nb, ham\nc,spam\n")
    assert load_texts(path, "t", "y").label_names == ("ham", "spam")


def test_unreadable_weights_say_permission_denied(work: Path, tmp_path: Path) -> None:
    from synapse_lens import load_classifier

    if os.geteuid() == 0:
        pytest.skip("running as root, which reads every file whatever its mode: an unreadable "
                    "checkpoint cannot be made here")
    model = tmp_path / "locked"
    shutil.copytree(work / "model", model)
    (model / "model.safetensors").chmod(0)
    with pytest.raises(PermissionError, match="permission denied"):
        load_classifier(model)


def test_nul_bytes_never_reach_the_report_and_quiet_is_quiet(
    work: Path, tmp_path: Path, capfd: pytest.CaptureFixture
) -> None:
    texts = [f"{t}\x00cash\x07" for t in _texts(60)]
    data = tmp_path / "nul.jsonl"
    data.write_text("".join(json.dumps({"message": t, "kind": f"class_{i % 2}"}) + "\n"
                            for i, t in enumerate(texts)))
    model = tmp_path / "model2"
    tiny_classifier_dir(model, "bert", seed=2, n_classes=2)
    capfd.readouterr()
    assert _run(work, tmp_path / "run", "--max-examples", "0", model=model, data=data) == 0
    captured = capfd.readouterr()
    assert "Loading weights" not in captured.err and "%|" not in captured.err
    html = (tmp_path / "run" / "report.html").read_text()
    assert "\x00" not in html and "\x07" not in html
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["config"]["max_examples"] is None and summary["data"]["n"] == 60

"""The HTML report: self-contained and offline, escaped, findings computed from the numbers,
missing tables tolerated, atomic writes, comparison across runs, and a real-browser check."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from report_tables import synthetic_tables

from synapse_lens.report import (
    REPORT_FILE,
    findings,
    headline,
    prepare,
    read_run,
    render_report,
    save_tables,
    write_comparison_report,
    write_report,
)

XSS = "<script>alert(1)</script>"
XSS_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def _summary(task: str = "sms-spam", **extra: object) -> dict[str, object]:
    return {"task": task, "model": {"source": "/models/minilm", "fingerprint": "abc123",
                                    "d_model": 16},
            "config": {"ks": [1, 4], "seed": 0},
            "examples": [{"text": f"win a prize {XSS}", "label": "spam", "prediction": "spam"},
                         {"text": "see you at lunch", "label": "ham", "prediction": "spam"}],
            **extra}


def _run_dir(root: Path, tables: dict[str, pd.DataFrame], summary: dict[str, object]) -> Path:
    root.mkdir(parents=True)
    save_tables(tables, root / "tables")
    (root / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    return synthetic_tables(("ham", "spam"))


@pytest.fixture(scope="module")
def html(tables: dict[str, pd.DataFrame]) -> str:
    return render_report(tables, _summary())


def _plotly_js_head() -> str:
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())[:400]


def test_report_is_self_contained(html: str) -> None:
    assert html.count(_plotly_js_head()) == 1  # plotly.js inlined exactly once
    tags = re.findall(r"<(?:script|link|img|iframe)\b[^>]*>", html)
    assert not [t for t in tags if re.search(r"\b(?:src|href)\s*=", t)]  # nothing loaded
    from plotly.offline import get_plotlyjs

    ours = html.replace(str(get_plotlyjs()), "")  # the page around the plotly.js bundle
    assert "http://" not in ours and "https://" not in ours
    n_divs = html.count('class="plotly-graph-div"')
    assert n_divs == html.count("Plotly.newPlot(") == 14  # ablation: [CLS] and every position
    ids = re.findall(r'<div id="(fig-[^"]+)" class="plotly-graph-div"', html)
    assert len(set(ids)) == n_divs  # unique, deterministic ids


def test_report_has_every_section_and_examples(html: str) -> None:
    for anchor in ("findings", "run", "probes", "neurons", "redundancy", "faithfulness",
                   "ablation", "classes", "noise", "redirection", "vulnerability",
                   "stability"):
        assert f'<section id="{anchor}">' in html and f'href="#{anchor}"' in html
    assert "Held-out examples" in html and "see you at lunch" in html
    assert "class=\"missing\"" not in html


def test_dataset_strings_are_escaped() -> None:
    t = synthetic_tables(("ham", XSS))
    page = render_report(t, _summary(task=f"task {XSS}"))
    assert XSS not in page
    assert "alert(1)</script>" not in page and "<script>alert" not in page
    assert f"win a prize {XSS_ESCAPED}" in page  # the example text
    assert f"task {XSS_ESCAPED}" in page  # summary field and title
    assert f"class {XSS_ESCAPED} (probe)" in page  # class name in the neuron tables


def test_findings_follow_the_numbers(tables: dict[str, pd.DataFrame]) -> None:
    base = findings(prepare(tables))
    assert any("layer 1 (blocks.1.hook_resid_post)" in s and "95.0 %" in s for s in base)
    flipped = findings(prepare({**tables, **synthetic_tables(
        ("ham", "spam"), probe_acc=(0.9, 0.7, 0.6))}))
    probe_line = next(s for s in flipped if s.startswith("The most decodable"))
    assert "the embeddings (blocks.0.hook_resid_pre)" in probe_line and "90.0 %" in probe_line
    assert probe_line not in base

    def ablation_line(lines: list[str]) -> str:
        return next(s for s in lines if s.startswith("Zero-ablating the top-k"))

    weak = findings(prepare(synthetic_tables(("ham", "spam"), top_drop=0.001)))
    assert "layer 1 (blocks.1.hook_resid_post) from k = 2 (12 % of the width)" in ablation_line(
        base)
    assert "no k up to" not in ablation_line(base)
    assert "no k up to 8 (50 % of the width) costs more than random" in ablation_line(weak)
    assert "top-k costs less than random (anti-causal)" in ablation_line(weak)
    assert "from k = 2 (12 % of the width):" not in ablation_line(weak)
    assert "at [CLS] only" in ablation_line(base) and "at every position" in ablation_line(base)

    def class_line(lines: list[str]) -> str:
        return next(s for s in lines if s.startswith("Class-wise"))

    assert "own top-2 units" in class_line(base)
    assert "'spam' fragile+collateral" in class_line(base)
    assert "'ham' redundant+collateral" in class_line(base)
    other = findings(prepare(synthetic_tables(("ham", "spam"), fragile="ham")))
    assert "'ham' fragile" in class_line(other) and "'spam' redundant" in class_line(other)


def test_negligible_effects_are_said_so(tables: dict[str, pd.DataFrame]) -> None:
    flat = tables["ablation"].copy()
    flat["value"] = flat["clean_value"]  # no ablation changes anything
    no_flips = tables["redirection"].assign(value=0.0)
    lines = findings(prepare({"ablation": flat, "redirection": no_flips,
                              "class_matrix": tables["class_matrix"].assign(delta=0.0)}))
    assert lines[0].startswith("Zero-ablating the top-k units of the probe ranking")
    # no rankings table: k = 8, where top = random = bottom, is taken for the full width
    assert lines[0].count("no k up to 4 (50 % of the width) costs more than random k-sets") == 4
    assert "from k =" not in lines[0]  # two hooks, two positions, none beyond random
    assert lines[1].startswith("Class-wise, ablating each class's own top-4 units")
    assert "the largest k tried: no class loses more than under random k-sets" in lines[1]
    assert lines[2].startswith("Perturbing the output weights of the top-4 units")
    assert "never differs from perturbing random units' up to ε = 0.5" in lines[2]


def test_run_labels() -> None:
    from synapse_lens.report import run_label

    assert run_label({}) == "run"
    assert run_label({"task": "sms-spam", "model": "minilm"}) == "sms-spam · minilm"
    demo = {"task": "sms-spam", "model": {"source": "/cache/zoo/sms-spam",
                                          "architecture": "BertForSequenceClassification"},
            "zoo_manifest": {"base_model": "sentence-transformers/all-MiniLM-L6-v2"}}
    assert run_label(demo) == "sms-spam · all-MiniLM-L6-v2"
    del demo["zoo_manifest"]
    assert run_label(demo) == "sms-spam · BertForSequenceClassification"
    assert run_label({"data": {"name": "reviews"}, "model": {"source": "/m/bert-tiny"}}) == \
        "reviews · bert-tiny"


def test_headline_numbers(tables: dict[str, pd.DataFrame]) -> None:
    head = headline(prepare(tables))
    assert head["best_probe_hook"] == "blocks.1.hook_resid_post"
    assert head["best_probe_accuracy"] == pytest.approx(0.95)
    assert head["best_probe_selectivity"] == pytest.approx(0.45)
    assert head["ablation_k"] == 8 and head["top_k_accuracy"] == pytest.approx(0.3)
    assert head["minimal_set_k"] == 12 and head["minimal_set_width"] == 48
    assert head["most_fragile_class"] == "spam"
    json.dumps(head)  # JSON-friendly


def test_missing_tables_leave_notices() -> None:
    empty = render_report({}, {})
    assert empty.count('class="missing"') == 12  # every section, run details included
    assert "tables/probes.csv" in empty and "Plotly.newPlot(" not in empty
    only = render_report({"probes": synthetic_tables()["probes"]}, {"task": "x"})
    assert only.count("Plotly.newPlot(") == 1
    assert "tables/ablation.csv" in only and "The most decodable" in only


def test_tables_with_nothing_to_plot_leave_notices(tables: dict[str, pd.DataFrame]) -> None:
    probeless = tables["ablation"].assign(method="probeless")
    only_global = tables["overlap"].iloc[:0]
    page = render_report({"ablation": probeless, "overlap": only_global,
                          "noise": tables["noise"].iloc[:0]}, {})
    assert page.count("Plotly.newPlot(") == 2  # the probeless curves: [CLS], every position
    assert "Nothing to plot here: the overlap table is empty." in page
    assert "Nothing to plot here: the noise table is empty." in page


def test_bad_input_is_refused(tables: dict[str, pd.DataFrame]) -> None:
    with pytest.raises(ValueError, match="unknown table names"):
        render_report({"probez": tables["probes"]}, {})
    with pytest.raises(ValueError, match="lacks columns"):
        render_report({"probes": pd.DataFrame({"layer": [0]})}, {})
    with pytest.raises(ValueError, match="examples"):
        render_report({}, {"examples": ["just a string"]})
    with pytest.raises(TypeError, match="summary"):
        render_report({}, [])  # type: ignore[arg-type]


def test_write_report_round_trip_is_deterministic(tmp_path: Path,
                                                   tables: dict[str, pd.DataFrame]) -> None:
    run = _run_dir(tmp_path / "run", tables, _summary())
    path = write_report(run)
    assert path == run / REPORT_FILE and path.is_file()
    first = path.read_bytes()
    assert write_report(run).read_bytes() == first
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    loaded, summary = read_run(run)
    assert set(loaded) == set(tables) and summary["task"] == "sms-spam"
    assert first.decode() == render_report(loaded, summary)


def test_class_names_survive_the_csv_round_trip(tmp_path: Path) -> None:
    t = synthetic_tables(("NA", "None", "1"))
    loaded, _ = read_run(_run_dir(tmp_path / "run", t, {}))
    assert sorted(loaded["class_matrix"]["class"].unique()) == ["1", "NA", "None"]
    assert "class NA (probe)" in render_report(loaded, {})


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_failed_write_leaves_no_report(tmp_path: Path, tables: dict[str, pd.DataFrame]) -> None:
    run = _run_dir(tmp_path / "run", {"probes": tables["probes"]}, {})
    pd.DataFrame({"hook_name": ["h"]}).to_csv(run / "tables" / "ablation.csv", index=False)
    with pytest.raises(ValueError, match="ablation"):
        write_report(run)
    assert not (run / REPORT_FILE).exists() and _leftovers(run) == []


def test_failure_while_writing_keeps_the_old_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    tables: dict[str, pd.DataFrame]) -> None:
    run = _run_dir(tmp_path / "run", {"probes": tables["probes"]}, {})
    (run / REPORT_FILE).write_text("previous report")

    def fail(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)  # the last step of the atomic write fails
    with pytest.raises(OSError, match="disk full"):
        write_report(run)
    monkeypatch.undo()
    assert (run / REPORT_FILE).read_text() == "previous report"
    assert _leftovers(run) == []


def test_read_run_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_run(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="summary.json"):
        read_run(tmp_path)
    (tmp_path / "summary.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        write_report(tmp_path)
    (tmp_path / "summary.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        read_run(tmp_path)
    assert not (tmp_path / REPORT_FILE).exists()


def test_comparison_report(tmp_path: Path, tables: dict[str, pd.DataFrame]) -> None:
    a = _run_dir(tmp_path / "a", tables, _summary("sms-spam"))
    b = _run_dir(tmp_path / "b", synthetic_tables(("abbr", "desc", XSS), seed=3),
                 _summary("trec-6"))
    c = _run_dir(tmp_path / "c", {"probes": tables["probes"]}, _summary("sms-spam"))
    out = write_comparison_report([a, b, c], tmp_path / "cmp")
    page = out.read_text()
    assert out == tmp_path / "cmp" / REPORT_FILE
    for label in ("sms-spam · minilm", "trec-6 · minilm", "sms-spam · minilm (2)"):
        assert label in page
    assert page.count(_plotly_js_head()) == 1 and page.count("Plotly.newPlot(") == 4
    assert XSS not in page and XSS_ESCAPED in page
    # targeted redirection lined up: per run and edit, the pairs and the median size_50
    assert '<section id="vulnerability">' in page
    assert page.count("weight / classifier_set") == 2  # runs a and b; c has no such table
    assert "desc → abbr" not in page  # a summary per run, not a list of pairs
    with pytest.raises(ValueError, match="at least two"):
        write_comparison_report([a], tmp_path / "cmp2")
    assert not (tmp_path / "cmp2").exists()


class _Figures(HTMLParser):
    """Per plotly figure div, whether a rendered ``svg.main-svg`` lies inside it."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str | None] = []
        self.drawn: dict[str, bool] = {}
        self.errors = ""
        self._in_errors = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        fig = a.get("id") if tag == "div" and "plotly-graph-div" in classes else None
        if fig:
            self.drawn[fig] = False
        if tag == "svg" and "main-svg" in classes:
            for open_fig in self.stack:
                if open_fig:
                    self.drawn[open_fig] = True
        self._in_errors = a.get("id") == "synapse-script-errors"
        if tag not in ("br", "img", "meta", "input", "link", "hr", "path", "rect", "line"):
            self.stack.append(fig)

    def handle_endtag(self, tag: str) -> None:
        if self.stack:
            self.stack.pop()
        self._in_errors = False

    def handle_data(self, data: str) -> None:
        if self._in_errors:
            self.errors += data


@pytest.mark.skipif(shutil.which("chromium") is None and not os.environ.get("CI"),
                    reason="chromium is not installed (Debian: apt-get install chromium); the "
                           "headless rendering check needs a real browser (in CI it fails "
                           "instead: .ci/run installs chromium)")
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    assert shutil.which("chromium"), "chromium is missing: .ci/run installs it with apt-get"
    run = _run_dir(tmp_path / "run", synthetic_tables(("ham", XSS, "spam")), _summary())
    report = write_report(run)
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
             "--virtual-time-budget=15000", "--dump-dom", report.resolve().as_uri()],
            capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    parser = _Figures()
    parser.feed(proc.stdout)
    assert len(parser.drawn) == 14, proc.stdout[:500]
    assert all(parser.drawn.values()), [f for f, ok in parser.drawn.items() if not ok]
    assert parser.errors.strip() == ""
    console = [line for line in proc.stderr.splitlines()
               if "CONSOLE" in line and ("Uncaught" in line or "Error" in line)]
    assert console == []
    assert XSS_ESCAPED in proc.stdout  # shown as text, never turned into an element


def test_truncation_is_reported() -> None:
    cut = {"max_length": 64, "n_texts": 300, "n_truncated": 45, "share_truncated": 0.15,
           "cut_tokens_median": 37.0, "cut_tokens_max": 412, "longest_tokens": 476}
    page = render_report({}, _summary(truncation=cut))
    assert ("45 of 300 texts (15.0 %) are longer than 64 tokens and were cut there (by a "
            "median of 37 tokens, at most 412)") in page
    none = render_report({}, _summary(truncation={**cut, "n_truncated": 0}))
    assert "were cut there" not in none

"""Generate the three notebooks (sources only; the test suite executes them)."""
from pathlib import Path

import nbformat as nbf

FAST = '''# Parameters: the test suite sets SYNAPSE_LENS_FAST=1 to run this notebook with tiny settings
# (a few fine-tuning steps, few texts). Leave it unset for the real analysis.
import os

FAST = os.environ.get("SYNAPSE_LENS_FAST") == "1"
'''

RENDERER = '''# Figures: interactive in Jupyter (plotly's JSON), plus a static PNG that a code host can show
# when kaleido and Chrome/Chromium are installed (`pip install -e ".[notebooks]"`).
import importlib.util

import plotly.io as pio

PNG = not FAST and importlib.util.find_spec("kaleido") is not None
pio.renderers.default = "plotly_mimetype+png" if PNG else "plotly_mimetype"
'''


def nb(cells):
    book = nbf.v4.new_notebook()
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    book.cells = [nbf.v4.new_markdown_cell(c[3:]) if c.startswith("md:") else nbf.v4.new_code_cell(c.strip("\n")) for c in cells]
    return book


quick = nb([
"""md:# 01 · Quickstart: load → cache → probe → rank → ablate → plot

SYNAPSE in a few lines on the demo SMS-spam classifier (all-MiniLM-L6-v2 fine-tuned offline by
`synapse_lens.demo.zoo`; the first call builds it in a few minutes and caches it).""",
FAST,
RENDERER,
"""import torch

from synapse_lens import (
    ExecOptions,
    ablation_curve,
    cache_cls,
    classifier_info,
    fit_probes,
    load_demo_classifier,
    rankings_frame,
    summarize,
    train_test_split,
)
from synapse_lens.demo.zoo import ZooConfig
from synapse_lens.plots import ablation_figure, probe_figure, ranking_figure

torch.manual_seed(0)""",
"""md:## 1. Load a fine-tuned classifier as a hooked TransformerLens model""",
"""config = ZooConfig(max_train=256, steps=8) if FAST else None
model, splits = load_demo_classifier("sms-spam", config=config)
info = classifier_info(model)
data = splits.held_out  # a TextDataset the classifier never saw in training
if FAST:
    data, _ = train_test_split(data, test_size=len(data) - 120, seed=0)
print(info.architecture, info.n_layers, "layers;", len(data), "held-out texts;", info.id2label)
print("layer outputs:", info.names.layer_outputs())
options = ExecOptions(max_length=64)  # the length the demo classifier was trained with""",
"""md:## 2. Cache the [CLS] vector of every layer and fit one probe per layer""",
"""acts = cache_cls(model, data.texts, dataset_fingerprint=data.fingerprint, options=options)
probes = fit_probes(acts, data)
probe_figure(probes.table).show()""",
"""md:## 3. Rank the neurons of the last layer (globally and per class)""",
"""last = info.names.resid_post(-1)
ranking = probes.ranking(last)
print("top-10 neurons of", last, ranking.top(10))
ranking_figure(rankings_frame(probes.rankings()), k=10).show()""",
"""md:## 4. Ablate top-k vs random-k vs bottom-k on held-out texts the probes never saw""",
"""eval_data = data.subset(probes.test_idx)
ks = [1, 8, 32] if FAST else [1, 4, 16, 64, 128]
curve = ablation_curve(model, eval_data, [ranking], ks, n_seeds=5, options=options)
summary = summarize(curve)
ablation_figure(summary).show()
summary.query("metric == 'accuracy'")[["order", "k", "mean", "ci_low", "ci_high"]]""",
"""md:## 5. Our hooks are plain TransformerLens hook functions

They compose with `model.hooks(...)`, `run_with_hooks` and `run_with_cache`.""",
"""from synapse_lens import zero_ablate

texts = ["Congratulations! You have won a 500 GBP voucher. Text CLAIM to 80062 now to collect",
         "WINNER! Claim your free prize now",  # no number to call or text
         "see you at lunch tomorrow?"]
hook = zero_ablate(model, last, ranking.top(16))
with torch.inference_mode():
    clean = model(texts).softmax(-1)
    with model.hooks(fwd_hooks=[(last, hook)]):
        ablated = model(texts).softmax(-1)
print("classes ", info.id2label)
print("clean   ", clean.numpy().round(3))
print("ablated ", ablated.numpy().round(3))""",
])

patching = nb([
"""md:# 02 · Activation patching with TransformerLens, next to SYNAPSE hooks

`transformer_lens.patching` passes token ids only; synapse_lens models derive the attention mask
from pad ids, so padded batches stay exact. Here we patch the residual stream of a *clean*
spam message into a *corrupted* (ham) run, layer by layer and position by position, while a
synapse_lens ablation hook is active at the same time.""",
FAST,
RENDERER,
"""import plotly.express as px
import torch
from transformer_lens import patching

from synapse_lens import classifier_info, load_demo_classifier, zero_ablate
from synapse_lens.data import tokenize
from synapse_lens.demo.zoo import ZooConfig

model, splits = load_demo_classifier("sms-spam",
                                     config=ZooConfig(max_train=256, steps=8) if FAST else None)
info = classifier_info(model)
spam = info.id2label.index("spam")""",
"""clean_text = "URGENT! You have won a free cash prize. Call 09061743810 now to claim"
corrupt_text = "Hey are you free now? Call me when you can, no rush"
tokens = tokenize(model, [clean_text, corrupt_text], max_length=32)["input_ids"]
clean_tokens, corrupt_tokens = tokens[:1], tokens[1:]
print(clean_tokens.shape, corrupt_tokens.shape)

with torch.inference_mode():
    clean_logits, clean_cache = model.run_with_cache(clean_tokens)
    corrupt_logits = model(corrupt_tokens)


def spam_logit_diff(logits):
    return logits[:, spam] - logits[:, 1 - spam]


print("clean", spam_logit_diff(clean_logits).item(), "corrupt", spam_logit_diff(corrupt_logits).item())""",
"""md:Patch `resid_pre` of every layer and position from the clean run into the corrupted run:""",
"""def metric(logits):
    return spam_logit_diff(logits).mean()


with torch.inference_mode():
    result = patching.get_act_patch_resid_pre(model, corrupt_tokens, clean_cache, metric)
words = model.tokenizer.convert_ids_to_tokens(corrupt_tokens[0])
px.imshow(result.numpy(), x=[f"{i}:{w}" for i, w in enumerate(words)],
          labels={"x": "position", "y": "layer", "color": "spam − ham logit"},
          color_continuous_scale="RdBu", color_continuous_midpoint=0.0,
          title="Activation patching (resid_pre), clean spam → corrupt ham").show()""",
"""md:Now the same sweep while a synapse_lens hook zero-ablates 32 [CLS] units of the last layer.
`model.hooks(...)` nests with the hooks that `patching` adds and removes them on exit.""",
"""last = info.names.resid_post(-1)
units = list(range(32))
with torch.inference_mode(), model.hooks(fwd_hooks=[(last, zero_ablate(model, last, units))]):
    ablated = patching.get_act_patch_resid_pre(model, corrupt_tokens, clean_cache, metric)
print("max change from the ablation:", (ablated - result).abs().max().item())
print("hooks left after the context:", sum(len(hp.fwd_hooks) for hp in model.hook_dict.values()))""",
"""md:Padded batches: patching a padded batch gives the same numbers as patching each example alone.""",
"""batch = tokenize(model, [clean_text, "free prize"], max_length=32)["input_ids"]
with torch.inference_mode():
    logits_batch = model(batch)
    logits_single = model(batch[1:, : int((batch[1] != model.tokenizer.pad_token_id).sum())])
print("padded vs alone:", (logits_batch[1] - logits_single[0]).abs().max().item())""",
])

cross = nb([
"""md:# 03 · Three domains compared: security, general text, healthcare

Three demo classifiers built on the same encoder: SMS spam (security), TREC question types
(general text) and drug reviews (healthcare). The full SYNAPSE pipeline runs on each (the same as
`synapse-lens demo`), then one comparison report puts them side by side.""",
FAST,
RENDERER,
"""import tempfile
from pathlib import Path

from synapse_lens import RunConfig, load_demo_classifier, run_synapse, write_comparison_report
from synapse_lens.demo.zoo import ZOO_CONFIGS, ZooConfig
from synapse_lens.plots import compare_probe_figure

out = Path(tempfile.mkdtemp(prefix="synapse-cross-task-"))
config = (RunConfig(layers=(5,), ks=(1, 8), n_seeds=2, class_k=8, n_boot=2, max_examples=150,
                    sigmas=(0.0, 1.0), noise_seeds=1, eps_values=(0.0, 0.3), biases=(0.0, 1.0),
                    rankings=("probe",), exact=False, positions=("cls",))
          if FAST else None)""",
"""runs = []
for task in ("sms-spam", "trec-6", "drug-reviews"):
    model, splits = load_demo_classifier(task,
                                         config=ZooConfig(max_train=256, steps=8) if FAST else None)
    task_config = config if FAST else RunConfig(max_length=ZOO_CONFIGS[task].max_length)
    runs.append(run_synapse(model, splits.held_out, out / task, task_config,
                            extra_summary={"task": task}, progress=False))
for run in runs:
    print(repr(run))""",
"""import pandas as pd

probes = pd.concat([run.tables["probes"].assign(run=run.name) for run in runs])
compare_probe_figure(probes).show()""",
"""report = write_comparison_report(runs, out / "comparison")
print("comparison report:", report.name, "in a scratch directory")""",
])

for name, book in [("01_quickstart", quick), ("02_activation_patching", patching), ("03_cross_task", cross)]:
    nbf.write(book, Path(__file__).parent / f"{name}.ipynb")

"""Run many interventions over one dataset, each paying only for the layers it changes.

:func:`run_resumed` is the fast path of :func:`synapse_lens.experiments.engine.run_conditions`: the
dataset is split into the same length-sorted batches as every full forward
(:func:`synapse_lens.activations.predict_logits`), the clean states are captured once per chunk
of batches (:func:`synapse_lens.runtime.resume.capture`), and each job — hooks, an optional weight
edit, its resume point — re-runs only its downstream layers on every batch, inside its own
``model.hooks(...)`` (and edit) context. Hooks are called batch after batch in the same order as in
a full run, so seeded hooks (noise) draw the same numbers.

The cached states take ``n · pos · d_model`` floats per resume point; they are kept for a chunk
of batches at a time (:data:`STATE_BUDGET_BYTES`). Jobs with a weight edit take the fast path only
when the whole dataset fits in one chunk (the edit is entered once, as in a full run).

When every job's hooks at the last layer read [CLS] only (:meth:`PlainModel.cls_only_ok`), the
clean states are captured, and every job resumed, with the [CLS]-only last layer
(:mod:`synapse_lens.runtime.pruned`); else the whole run computes the full last layer. At the
resume points of jobs whose hooks all edit [CLS] only (marked
:func:`~synapse_lens.runtime.pruned.reads_cls_only`) and that edit no weights, the clean query,
key and value projections of the layer are kept as well (three more tensors per point), and
the first resumed layer projects the [CLS] row alone.

Safety checks send jobs back to the full forward (``None`` results): hooks attached to the model
from outside, a resumed run that does not reproduce the clean logits bit for bit on the first
batch, an edit changing parameters it did not declare, hooks the plain copy cannot fire.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from synapse_lens.models import classifier_info
from synapse_lens.runtime.batching import length_sorted_batches
from synapse_lens.runtime.plain import PlainModel
from synapse_lens.runtime.pruned import is_cls_only
from synapse_lens.runtime.resume import BatchState, capture, named_parameters, resume

logger = logging.getLogger(__name__)

#: Most bytes of cached clean states held at once (per chunk of batches).
STATE_BUDGET_BYTES = 1 << 30


@dataclass(frozen=True, eq=False)
class Job:
    """One intervened run: its hooks, optional weight edit (with the parameters it may
    change), and the layer it resumes at."""

    hooks: Sequence[tuple[Any, Any]]
    point: int
    edit: Callable[[], AbstractContextManager[Any]] | None = None
    touches: Collection[str] = ()


def _chunks(sizes: Sequence[int], budget: int) -> list[list[int]]:
    """Consecutive batch indices grouped so that each group's bytes stay within ``budget``
    (a batch larger than the budget gets a group of its own)."""
    groups: list[list[int]] = [[]]
    used = 0
    for i, size in enumerate(sizes):
        if groups[-1] and used + size > budget:
            groups.append([])
            used = 0
        groups[-1].append(i)
        used += size
    return groups


def _versions(model: Any) -> dict[str, tuple[int, int]]:
    return {n: (id(p), p._version) for n, p in named_parameters(model).items()}


def _edit_ok(before: dict[str, tuple[int, int]], model: Any, touches: Collection[str]) -> bool:
    """Only declared parameters changed (in place; none replaced)."""
    after = _versions(model)
    if after.keys() != before.keys():
        return False
    return all(after[n] == before[n] for n in before if n not in touches) and all(
        after[n][0] == before[n][0] for n in touches if n in before)


def run_resumed(
    pm: PlainModel,
    texts: Sequence[str],
    jobs: Sequence[Job],
    *,
    batch_size: int,
    max_length: int,
    progress: bool = False,
    desc: str = "conditions",
    budget_bytes: int = STATE_BUDGET_BYTES,
    clean_out: Tensor | None = None,
) -> list[Tensor | None]:
    """Logits of every job, resumed from cached clean states.

    Args:
        pm: the plain copy of the model (:func:`synapse_lens.runtime.plain.plain_model`).
        texts: the dataset's texts.
        jobs: the runs, each with its resume point
            (:func:`synapse_lens.runtime.resume.resume_point`).
        batch_size, max_length: batching, as for the full forward.
        progress: tqdm bar over jobs (× chunks).
        desc: the bar's label.
        budget_bytes: most bytes of cached states per chunk.
        clean_out: a ``[n, n_classes]`` tensor that receives the clean logits of the captured
            forward passes (in the order of ``texts``), so that a caller needs no clean forward
            of its own; it is filled completely only when some job took the fast path (check
            the results: a job's logits are not ``None``).

    Returns:
        Per job, ``float32 [n, n_classes]`` CPU logits in the order of ``texts``, or ``None``
        when the job must run as a full forward instead (see the module docstring).

    Raises:
        RuntimeError: a safety check failing after part of a job already ran (only possible
            with several chunks).

    Example:
        >>> out = run_resumed(pm, ds.texts, [Job(hooks, 3)], batch_size=32, max_length=128)
        ...     # doctest: +SKIP
    """
    model = pm.model
    results: list[Tensor | None] = [None] * len(jobs)
    if not jobs or pm.attached() or not pm.usable():
        return results
    order, encodings = length_sorted_batches(model, texts, batch_size, max_length)
    rows = [order[s:s + batch_size] for s in range(0, len(order), batch_size)]
    points = sorted({job.point for job in jobs})
    n_layers = len(pm.blocks)
    reusable = sorted({job.point for job in jobs if job.edit is None and job.point < n_layers
                       and job.hooks and all(is_cls_only(fn) for _, fn in job.hooks)})
    d_model = classifier_info(model).d_model
    item = next(model.parameters()).element_size()
    sizes = [(len(points) + 3 * len(reusable)) * enc["input_ids"].numel() * d_model * item
             for enc in encodings]
    chunks = _chunks(sizes, budget_bytes)
    cls_only = all(pm.cls_only_ok(job.hooks) for job in jobs)
    live = [i for i, job in enumerate(jobs) if job.edit is None or len(chunks) == 1]
    out = {i: torch.empty(len(texts), classifier_info(model).n_classes) for i in live}
    bar = tqdm(total=len(live) * len(chunks), desc=desc, disable=not progress)
    try:
        for c, chunk in enumerate(chunks):
            states = capture(pm, [encodings[b] for b in chunk], [rows[b] for b in chunk], points,
                             cls_only=cls_only, keep_projections=reusable)
            if clean_out is not None:
                for state in states:
                    clean_out[torch.as_tensor(np.asarray(state.rows))] = state.logits.detach().to(
                        "cpu", torch.float32)
            if c == 0 and not _reproduces(pm, states[0], points[0]):
                logger.warning("resumed forward does not reproduce the clean logits on this "
                               "model; running every condition in full")
                return results
            for i in list(live):
                if not _run_job(pm, jobs[i], states, out[i], first=c == 0):
                    live.remove(i)
                    del out[i]
                bar.update(1)
    finally:
        bar.close()
    for i, logits in out.items():
        results[i] = logits
    return results


def _reproduces(pm: PlainModel, state: BatchState, point: int) -> bool:
    with torch.inference_mode():
        return bool(torch.equal(resume(pm, state, point), state.logits))


def _run_job(pm: PlainModel, job: Job, states: Sequence[BatchState], out: Tensor,
             first: bool) -> bool:
    """Resume every batch of a chunk for one job into ``out``; False (nothing run) when a
    safety check fails on the first chunk."""
    model = pm.model
    before = _versions(model) if job.edit is not None else {}
    with (job.edit() if job.edit is not None else nullcontext()), model.hooks(
            fwd_hooks=list(job.hooks)), torch.inference_mode():
        ok = pm.usable() and (job.edit is None or _edit_ok(before, model, job.touches))
        if not ok:
            if first:
                return False
            raise RuntimeError("a condition's hooks or edit changed between chunks of the "
                               "dataset; cannot resume it")
        for state in states:
            logits = resume(pm, state, job.point, reuse=job.edit is None)
            out[torch.as_tensor(np.asarray(state.rows))] = logits.detach().to(
                "cpu", torch.float32)
    return True

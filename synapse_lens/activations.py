"""[CLS] activations: batched, padding-correct caching of position 0 at chosen hook points.

Only the hooks asked for are read, and of each only position 0 ([CLS]) is kept, so memory grows
as O(n · hooks · d), never O(n · seq · …). Extra ``fwd_hooks`` (interventions) run in the same
forward pass, before the caching hooks, so clean and intervened activations share one code path.

Example:
    >>> acts = cache_cls(model, ["free cash now", "see you"])  # doctest: +SKIP
    >>> acts[classifier_info(model).names.resid_post(0)].shape  # doctest: +SKIP
    torch.Size([2, 32])
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from synapse_lens.models import classifier_info
from synapse_lens.runtime.forward import HookFn, forward
from synapse_lens.runtime.options import ExecOptions, resolve

_FORMAT = "synapse_lens.cls_activations/1"


@dataclass(frozen=True, eq=False)
class ClsActivations:
    """Cached [CLS] vectors keyed by hook name (like TL's ``ActivationCache``).

    Attributes:
        acts: hook name -> ``float32 [n, d]`` on CPU, in depth order. For 3-D hooks the
            [CLS] position (0); 2-D hooks (pooled output, logits) as they are.
        model_fingerprint: ``classifier_info(model).fingerprint`` of the model that made them.
        dataset_fingerprint: the texts' dataset fingerprint, when known.
        layers: hook name -> depth (``info.names.layer_of``: -1 embeddings, ``l`` layer ``l``,
            ``n_layers`` pooled/logits).
    """

    acts: dict[str, Tensor]
    model_fingerprint: str
    dataset_fingerprint: str | None = None
    layers: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.acts:
            raise ValueError("ClsActivations needs at least one hook")
        sizes = {name: t.shape[0] for name, t in self.acts.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"every hook must hold the same number of examples, got {sizes}")
        for name, tensor in self.acts.items():
            if tensor.ndim != 2:
                raise ValueError(f"{name}: expected a [n, d] tensor, got {tuple(tensor.shape)}")
        missing = [n for n in self.acts if n not in self.layers]
        if self.layers and missing:
            raise ValueError(f"no layer recorded for hooks {missing}")

    def __repr__(self) -> str:
        widths = sorted({int(t.shape[1]) for t in self.acts.values()})
        return (f"ClsActivations(n={self.n}, hooks={len(self.acts)} "
                f"[{self.names[0]} .. {self.names[-1]}], d={'/'.join(map(str, widths))}, "
                f"model={self.model_fingerprint[:12]!r})")

    @property
    def names(self) -> list[str]:
        """Hook names, in depth order."""
        return list(self.acts)

    @property
    def n(self) -> int:
        """Number of examples."""
        return int(next(iter(self.acts.values())).shape[0])

    def layer(self, hook_name: str) -> int:
        """Depth of a cached hook (see ``layers``)."""
        self._check(hook_name)
        if hook_name not in self.layers:
            raise ValueError(f"no layer recorded for {hook_name!r}")
        return self.layers[hook_name]

    def _check(self, hook_name: str) -> None:
        if hook_name not in self.acts:
            raise ValueError(f"hook {hook_name!r} was not cached; cached hooks are {self.names}")

    def __contains__(self, hook_name: object) -> bool:
        return hook_name in self.acts

    def __getitem__(self, hook_name: str) -> Float[Tensor, "n d"]:
        self._check(hook_name)
        return self.acts[hook_name]

    def numpy(self, hook_name: str) -> Float[np.ndarray, "n d"]:
        """A hook's activations as a float64 NumPy array (for scikit-learn)."""
        return self[hook_name].numpy().astype(np.float64)

    def mean(self, hook_name: str) -> Float[Tensor, " d"]:
        """Mean [CLS] vector of a hook over the examples."""
        return self[hook_name].mean(dim=0)

    def subset(self, idx: Sequence[int] | np.ndarray) -> ClsActivations:
        """The examples at positions ``idx`` (dataset fingerprint dropped)."""
        index = torch.as_tensor(np.asarray(idx, dtype=np.int64))
        return ClsActivations({k: v[index] for k, v in self.acts.items()},
                              self.model_fingerprint, None, dict(self.layers))

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write to ``path`` (safetensors; JSON metadata in its header), atomically.

        Returns:
            The path written.

        Example:
            >>> acts.save(tmp_path / "acts.safetensors")  # doctest: +SKIP
        """
        from safetensors.torch import save_file

        path = Path(path)
        if not path.parent.is_dir():
            raise FileNotFoundError(f"directory {str(path.parent)!r} does not exist")
        meta = {
            "format": _FORMAT,
            "model_fingerprint": self.model_fingerprint,
            "dataset_fingerprint": self.dataset_fingerprint,
            "names": self.names,
            "layers": self.layers,
            "n": self.n,
            "dtype": "float32",
        }
        tensors = {n: t.detach().to("cpu", torch.float32).contiguous()
                   for n, t in self.acts.items()}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            save_file(tensors, tmp, metadata={"synapse_lens": json.dumps(meta)})
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str], model: Any = None) -> ClsActivations:
        """Read activations written by :meth:`save`.

        Args:
            path: the file.
            model: when given, the file must come from this model (same weight fingerprint).

        Raises:
            FileNotFoundError: no such file.
            ValueError: not a synapse_lens activation file, or from another model.
        """
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no such activation file: {str(path)!r}")
        try:
            with safe_open(str(path), framework="pt") as fh:
                meta = json.loads((fh.metadata() or {}).get("synapse_lens", "{}"))
                if meta.get("format") != _FORMAT:
                    raise ValueError(f"{str(path)!r} is not a synapse_lens activation file")
                acts = {name: fh.get_tensor(name) for name in meta["names"]}
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"{str(path)!r} is not a readable activation file: {err}") from err
        except Exception as err:  # safetensors raises its own error type on corrupt headers
            if isinstance(err, ValueError):
                raise
            raise ValueError(f"{str(path)!r} is not a readable activation file: {err}") from err
        if model is not None:
            expected = classifier_info(model).fingerprint
            if meta["model_fingerprint"] != expected:
                raise ValueError(
                    f"{str(path)!r} holds activations from another model (fingerprint "
                    f"{meta['model_fingerprint']}, this model is {expected})"
                )
        return cls(acts, meta["model_fingerprint"], meta.get("dataset_fingerprint"),
                   {k: int(v) for k, v in meta.get("layers", {}).items()})


def cache_cls(
    model: Any,
    texts: Sequence[str],
    *,
    names: Sequence[str] | None = None,
    options: ExecOptions | None = None,
    fwd_hooks: Sequence[tuple[str | Callable[[str], bool], HookFn]] = (),
    dataset_fingerprint: str | None = None,
) -> ClsActivations:
    """Cache the [CLS] vector (position 0) of ``texts`` at chosen hook points.

    Args:
        model: a model from :func:`synapse_lens.load_classifier`.
        texts: the texts (a :class:`~synapse_lens.data.TextDataset`'s ``texts``).
        names: hook names to cache (default ``info.names.layer_outputs()``: the embeddings and
            every layer output); add ``info.names.mlp_units()``, ``names.pooled`` or
            ``names.logits`` as needed.
        options: execution settings (:class:`~synapse_lens.ExecOptions`; default ``ExecOptions()``).
        fwd_hooks: extra TransformerLens ``(hook_name, fn)`` pairs applied during the forward
            pass, before the caching hooks (an empty list is the same as none, bit for bit).
        dataset_fingerprint: recorded with the activations (``TextDataset.fingerprint``).

    Returns:
        :class:`ClsActivations` with ``float32 [n, d]`` CPU tensors per hook, in depth order.

    Raises:
        ValueError: no texts, an unknown hook name, duplicate names, bad ``batch_size`` or
            ``max_length``.
        TypeError: the model was not loaded by synapse_lens; texts that are not strings.

    Example:
        >>> info = classifier_info(model)  # doctest: +SKIP
        >>> acts = cache_cls(model, ds.texts, names=info.names.layer_outputs())  # doctest: +SKIP
    """
    opts = resolve(options)
    info = classifier_info(model)
    names = list(info.names.layer_outputs() if names is None else names)
    if not names:
        raise ValueError("names is empty: ask for at least one hook")
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate hook names in {names}")
    layers = {}
    for name in names:
        layers[name] = info.names.layer_of(name)  # ValueError on unknown names
        if name not in model.hook_dict:
            raise ValueError(f"hook {name!r} does not exist on this model")
    # depth order; inside a layer the MLP units come before the layer output
    rank = {"embed": 0, "mlp_post": 1, "resid_post": 2, "pooled": 3, "logits": 4}
    names.sort(key=lambda n: (layers[n], rank[info.names.parse(n).site]))
    acts, _ = forward(model, texts, names, batch_size=opts.batch_size, max_length=opts.max_length,
                      fwd_hooks=fwd_hooks, progress=opts.progress, desc="cache [CLS]",
                      engine="auto" if opts.fast else "bridge")
    return ClsActivations(acts, info.fingerprint, dataset_fingerprint, layers)


def predict_logits(
    model: Any,
    texts: Sequence[str],
    *,
    options: ExecOptions | None = None,
    fwd_hooks: Sequence[tuple[str | Callable[[str], bool], HookFn]] = (),
) -> Float[Tensor, "n n_classes"]:
    """Class logits of ``texts`` with optional ``fwd_hooks`` (batched, ``inference_mode``).

    Args:
        model: a model from :func:`synapse_lens.load_classifier`.
        texts: the texts.
        options: execution settings (:class:`~synapse_lens.ExecOptions`; default
            ``ExecOptions(progress=False)``).
        fwd_hooks: TransformerLens ``(hook_name, fn)`` pairs active during the forward passes.

    Returns:
        ``float32 [n, n_classes]`` logits on CPU, in the order of ``texts``.

    Raises:
        ValueError / TypeError: as :func:`cache_cls`.

    Example:
        >>> predict_logits(model, ["free cash"]).argmax(-1)  # doctest: +SKIP
        tensor([1])
    """
    opts = resolve(options, progress=False)
    classifier_info(model)
    _, logits = forward(model, texts, [], batch_size=opts.batch_size, max_length=opts.max_length,
                        fwd_hooks=fwd_hooks, progress=opts.progress, desc="predict",
                        engine="auto" if opts.fast else "bridge")
    return logits

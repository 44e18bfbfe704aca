"""Hook names: the one place where they are built and parsed.

A SYNAPSE analysis talks about a handful of *sites* of an encoder classifier:

================  =============================================================
site              meaning
================  =============================================================
``embed``         the embeddings output (input of layer 0), HF ``hidden_states[0]``
``resid_post``    the output of layer ``l``, HF ``hidden_states[l + 1]``
``mlp_post``      the MLP units of layer ``l`` (after the activation function)
``pooled``        the vector the final classifier projection reads
``logits``        the class logits
================  =============================================================

Each backend spells these differently (TL 4.x ``TransformerBridge`` vs TL 3.x
``HookedEncoder``: a layer's output is ``blocks.{l}.hook_resid_post`` on the bridge and
``blocks.{l}.hook_normalized_resid_post`` on ``HookedEncoder``; the pooled vector's hook depends on
the family's head), so a :class:`HookNames` object is built per model and every other module asks
it instead of writing a hook name by hand.

Example:
    >>> names = HookNames(backend="tl4-bridge", n_layers=2, pooled="pooler.hook_out",
    ...                   logits="classifier.hook_out")
    >>> names.resid_post(1)
    'blocks.1.hook_resid_post'
    >>> names.parse("blocks.1.hook_resid_post")
    HookSite(site='resid_post', layer=1)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Backend = Literal["tl4-bridge", "tl3-hooked-encoder"]
Site = Literal["embed", "resid_post", "mlp_post", "pooled", "logits"]
#: Where a 3-D activation is edited: position 0 ([CLS]) only, or every position.
Position = Literal["cls", "all"]
SITES: tuple[Site, ...] = ("embed", "resid_post", "mlp_post", "pooled", "logits")

# Per-backend templates for the per-layer sites and the fixed embeddings site.
_TEMPLATES: dict[str, dict[str, str]] = {
    "tl4-bridge": {
        "embed": "blocks.0.hook_resid_pre",
        "resid_post": "blocks.{layer}.hook_resid_post",
        "mlp_post": "blocks.{layer}.mlp.hook_post",
    },
    "tl3-hooked-encoder": {
        "embed": "blocks.0.hook_resid_pre",
        "resid_post": "blocks.{layer}.hook_normalized_resid_post",
        "mlp_post": "blocks.{layer}.mlp.hook_post",
    },
}


# Hooks of the classifier head that do not depend on the family: the logits on each backend,
# and the pooled vector of a user's head (TL 4.x bridge: our ``pooler`` module) or of TL 3.x
# heads (``HookedEncoder``'s own BERT pooler; every other head, see synapse_lens.models.tl3).
# The family-specific TL 4.x pooled hooks are in synapse_lens.models.families.
TL4_OWN_HEAD_POOLED = "pooler.hook_out"
TL4_LOGITS = "classifier.hook_out"
TL3_BERT_POOLED = "pooler.hook_pooler_out"
TL3_POOLED = "hook_pooled"
TL3_LOGITS = "hook_logits"


@dataclass(frozen=True)
class HookSite:
    """A parsed hook name: which site, and which layer (``None`` for layer-less sites)."""

    site: Site
    layer: int | None


@dataclass(frozen=True)
class HookNames:
    """Hook names of one loaded classifier.

    Attributes:
        backend: which TransformerLens backend the model runs on.
        n_layers: number of encoder layers.
        pooled: hook name of the vector the final classifier projection reads.
        logits: hook name of the class logits.
    """

    backend: Backend
    n_layers: int
    pooled: str
    logits: str

    def __post_init__(self) -> None:
        if self.backend not in _TEMPLATES:
            raise ValueError(
                f"unknown backend {self.backend!r}; expected one of {sorted(_TEMPLATES)}"
            )

    @property
    def embed(self) -> str:
        """Hook name of the embeddings output (HF ``hidden_states[0]``)."""
        return _TEMPLATES[self.backend]["embed"]

    def _check_layer(self, layer: int) -> int:
        if isinstance(layer, bool) or not isinstance(layer, int):
            raise TypeError(f"layer must be an int, got {type(layer).__name__}")
        if layer < 0:
            layer += self.n_layers
        if not 0 <= layer < self.n_layers:
            raise ValueError(
                f"layer {layer} out of range: this model has layers 0..{self.n_layers - 1}"
            )
        return layer

    def resid_post(self, layer: int) -> str:
        """Hook name of layer ``layer``'s output (HF ``hidden_states[layer + 1]``).
        Negative layers count from the end."""
        return _TEMPLATES[self.backend]["resid_post"].format(layer=self._check_layer(layer))

    def mlp_post(self, layer: int) -> str:
        """Hook name of layer ``layer``'s MLP units (after the activation)."""
        return _TEMPLATES[self.backend]["mlp_post"].format(layer=self._check_layer(layer))

    def site(self, site: Site, layer: int | None = None) -> str:
        """Hook name for a site by name; ``layer`` is required for per-layer sites."""
        if site in ("resid_post", "mlp_post"):
            if layer is None:
                raise ValueError(f"site {site!r} needs a layer")
            return self.resid_post(layer) if site == "resid_post" else self.mlp_post(layer)
        if layer is not None:
            raise ValueError(f"site {site!r} has no layer, got layer={layer}")
        if site == "embed":
            return self.embed
        if site == "pooled":
            return self.pooled
        if site == "logits":
            return self.logits
        raise ValueError(f"unknown site {site!r}; expected one of {list(SITES)}")

    def layer_outputs(self, include_embed: bool = True) -> list[str]:
        """The embeddings output (optional) followed by every layer's output, in depth order."""
        out = [self.embed] if include_embed else []
        return out + [self.resid_post(layer) for layer in range(self.n_layers)]

    def mlp_units(self) -> list[str]:
        """Every layer's MLP-unit hook, in depth order."""
        return [self.mlp_post(layer) for layer in range(self.n_layers)]

    def parse(self, name: str) -> HookSite:
        """Turn a hook name back into its site and layer.

        Raises:
            ValueError: if ``name`` is not one of this model's SYNAPSE sites.
        """
        templates = _TEMPLATES[self.backend]
        if name == templates["embed"]:
            return HookSite("embed", None)
        if name == self.pooled:
            return HookSite("pooled", None)
        if name == self.logits:
            return HookSite("logits", None)
        for site in ("resid_post", "mlp_post"):
            pattern = re.escape(templates[site]).replace(r"\{layer\}", r"(\d+)")
            match = re.fullmatch(pattern, name)
            if match and int(match.group(1)) < self.n_layers:
                return HookSite(site, int(match.group(1)))  # type: ignore[arg-type]
        raise ValueError(
            f"unknown hook name {name!r} for this model; SYNAPSE sites are "
            f"{self.embed!r}, {self.resid_post(0)!r}..{self.resid_post(self.n_layers - 1)!r}, "
            f"{self.mlp_post(0)!r}.., {self.pooled!r} and {self.logits!r}"
        )

    def layer_of(self, name: str) -> int:
        """Depth index of a hook: -1 for the embeddings, ``l`` for layer ``l``'s sites,
        ``n_layers`` for the pooled output and the logits (they come after every layer)."""
        parsed = self.parse(name)
        if parsed.site == "embed":
            return -1
        if parsed.layer is None:
            return self.n_layers
        return parsed.layer


def check_position(position: str) -> None:
    """Raise ValueError unless ``position`` is ``"cls"`` or ``"all"``."""
    if position not in ("cls", "all"):
        raise ValueError(f"position must be 'cls' or 'all', got {position!r}")

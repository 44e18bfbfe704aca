"""Where a SYNAPSE site's units leave the model, as parameter names, per family and backend.

Weight-space interventions (``synapse_lens.interventions.edits``) scale or perturb the parameters
through which a unit's value leaves: zeroing those slices is the same as zero-ablating the unit at
every position. The spelling of those parameters depends on the family
(``bert.encoder.layer.l.output. dense`` vs ``distilbert.transformer.layer.l.ffn.lin2`` ...) and on
the backend (TL 3.x ``blocks.l.mlp.W_out``); this module is the one place that knows them.

Names are those of ``model.named_parameters()`` with TL 4.x's ``._original_component`` levels
removed (so, on TL 4.x, the Hugging Face spelling).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from torch import nn

from synapse_lens.models.families import family
from synapse_lens.models.loading import classifier_info


def named_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """``model``'s parameters under the names this module uses (TL 4.x's
    ``._original_component`` levels removed).

    Example:
        >>> "classifier.weight" in named_parameters(model)  # doctest: +SKIP
        True
    """
    return {name.replace("._original_component", ""): p for name, p in model.named_parameters()}


def unit_output_parameters(model: Any, hook_name: str) -> tuple[tuple[str, int], ...]:
    """The parameters through which the units of ``hook_name`` leave, with the axis that
    indexes the units.

    * ``mlp_post`` of layer ``l``: the MLP output projection's weight, unit axis = its input
      axis.
    * ``resid_post`` of layer ``l`` (every supported family is post-LayerNorm): the layer's
      output LayerNorm gain and bias.
    * ``embed``: the embedding LayerNorm gain and bias, or — when the embeddings are projected
      before layer 0 (ELECTRA with ``embeddings_project``, ALBERT) — the projection's weight rows
      and bias.

    Setting these slices to zero equals zero-ablating the units at every position.

    Args:
        model: a model from :func:`synapse_lens.load_classifier`.
        hook_name: an ``embed``, ``resid_post`` or ``mlp_post`` hook name of ``model``.

    Returns:
        ``((parameter name, unit axis), ...)``; names as in :func:`named_parameters`.

    Raises:
        ValueError: pooled / logits hooks (see :func:`classifier_parameters`), unknown hooks.

    Example:
        >>> unit_output_parameters(model, "blocks.2.mlp.hook_post")  # doctest: +SKIP
        (('bert.encoder.layer.2.output.dense.weight', 1),)
    """
    info = classifier_info(model)
    site = info.names.parse(hook_name)
    if site.site not in ("embed", "resid_post", "mlp_post"):
        raise ValueError(f"{hook_name!r} has no unit output weights; use "
                         "classifier_parameters() (edits.class_row) for the classifier, or an "
                         "embed / resid_post / mlp_post hook")
    if info.backend == "tl3-hooked-encoder":
        if site.site == "embed":
            return (("embed.ln.w", 0), ("embed.ln.b", 0))
        if site.site == "resid_post":
            return ((f"blocks.{site.layer}.ln2.w", 0), (f"blocks.{site.layer}.ln2.b", 0))
        return ((f"blocks.{site.layer}.mlp.W_out", 0),)
    rec = family(info.family)
    if site.site == "embed":
        params = named_parameters(model)
        proj = f"{rec.prefix}.{rec.embed_projection}"
        if rec.embed_projection is not None and f"{proj}.weight" in params:
            return ((f"{proj}.weight", 0), (f"{proj}.bias", 0))
        return ((f"{rec.prefix}.embeddings.LayerNorm.weight", 0),
                (f"{rec.prefix}.embeddings.LayerNorm.bias", 0))
    base = f"{rec.prefix}.{rec.layers}.{site.layer}"  # ALBERT: one module per application
    out, norm = f"{base}.{rec.mlp_out}", f"{base}.{rec.output_norm}"
    if site.site == "mlp_post":
        return ((f"{out}.weight", 1),)
    return ((f"{norm}.weight", 0), (f"{norm}.bias", 0))


def classifier_parameters(model: Any) -> tuple[tuple[str, int], ...]:
    """The final projection's weight and bias (unit axis = class axis 0): row ``c`` of each
    produces class ``c``'s logit.

    Example:
        >>> classifier_parameters(model)  # doctest: +SKIP
        (('classifier.out_proj.weight', 0), ('classifier.out_proj.bias', 0))
    """
    params = named_parameters(model)
    head = "classifier.out_proj" if "classifier.out_proj.weight" in params else "classifier"
    return tuple((f"{head}.{p}", 0) for p in ("weight", "bias") if f"{head}.{p}" in params)


@contextmanager
def frozen_weights(model: Any) -> Iterator[None]:
    """The weights without ``requires_grad`` for the duration (restored on any exit): the
    backward pass then computes activation gradients only, never the weights'."""
    params = [p for p in model.parameters() if p.requires_grad]
    try:
        for p in params:
            p.requires_grad_(False)
        yield
    finally:
        for p in params:
            p.requires_grad_(True)

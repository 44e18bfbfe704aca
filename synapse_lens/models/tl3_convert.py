"""HF encoder → TransformerLens 3.x ``HookedEncoder``: config and weights, converted by hand.

``HookedEncoder`` is BERT's post-LayerNorm stack: ``LN(word + position + token type)`` embeddings,
then per layer ``ln1(x + attn(x))`` → ``ln2(h + mlp(h))``, learned absolute positions counted
from 0, two token-type rows. A family converts *exactly* when its encoder is that computation:

==============  ===============================================================================
family          conversion
==============  ===============================================================================
bert            as is
roberta,        positions start at ``pad_token_id + 1``: ``W_pos`` is the table without its
xlm-roberta     first ``pad_token_id + 1`` rows (right padding keeps real tokens at 0..n-1);
                one token-type row (a zero row is added, never used)
distilbert      no token types (zero rows); ``sa_layer_norm`` → ``ln1``, ``output_layer_norm``
                → ``ln2``
electra         as BERT when ``embedding_size == hidden_size``; with ``embeddings_project``
                (a linear map after the embedding LayerNorm) it does not convert
albert          never: ``embedding_hidden_mapping_in`` projects the embeddings before layer 0
==============  ===============================================================================

Nothing here imports TransformerLens; :mod:`synapse_lens.models.tl3` builds the model.
"""

from __future__ import annotations

from typing import Any

import einops
import torch
from torch import Tensor

from synapse_lens.models.families import FAMILIES

#: Families HookedEncoder can represent (ELECTRA only without an embedding projection).
TL3_FAMILIES: tuple[str, ...] = tuple(f.name for f in FAMILIES.values() if f.tl3)

# HF hidden_act -> TransformerLens 3.x act_fn (same function).
_ACTIVATIONS = {
    "gelu": "gelu",
    "gelu_new": "gelu_new",
    "gelu_fast": "gelu_fast",
    "gelu_pytorch_tanh": "gelu_pytorch_tanh",
    "relu": "relu",
    "silu": "silu",
    "swish": "silu",
}


def family_of(config: Any) -> str:
    """synapse_lens family name of an HF config (``model_type`` with XLM-R spelled out)."""
    return str(config.model_type)


def tl3_unsupported_reason(config: Any) -> str | None:
    """Why ``HookedEncoder`` cannot represent this encoder exactly, or ``None`` if it can.

    Example:
        >>> import transformers
        >>> tl3_unsupported_reason(transformers.AlbertConfig())[:6]
        'ALBERT'
    """
    family = family_of(config)
    if family == "albert":
        return ("ALBERT projects its embeddings (embedding_hidden_mapping_in) before layer 0 and "
                "shares layer weights; HookedEncoder has no such projection")
    if family not in TL3_FAMILIES:
        return f"HookedEncoder has no conversion for model_type {family!r}"
    if family == "electra" and config.embedding_size != config.hidden_size:
        return (f"ELECTRA with embedding_size {config.embedding_size} != hidden_size "
                f"{config.hidden_size} projects its embeddings (embeddings_project); "
                "HookedEncoder has no such projection")
    act = config.activation if family == "distilbert" else config.hidden_act
    if act not in _ACTIVATIONS:
        return f"activation {act!r} has no HookedEncoder equivalent ({sorted(_ACTIVATIONS)})"
    if family != "distilbert":
        if getattr(config, "position_embedding_type", "absolute") != "absolute":
            return "only absolute position embeddings convert to HookedEncoder"
        if int(config.type_vocab_size) > 2:
            return f"HookedEncoder has 2 token types, this model {config.type_vocab_size}"
    return None


def tl3_config_dict(config: Any, device: str, dtype: torch.dtype) -> dict[str, Any]:
    """Keyword arguments of TL 3.x ``HookedTransformerConfig`` for an HF encoder config."""
    family = family_of(config)
    if family == "distilbert":
        d_model, n_heads, d_mlp = config.dim, config.n_heads, config.hidden_dim
        n_layers, eps, act = config.n_layers, 1e-12, config.activation
    else:
        d_model, n_heads, d_mlp = (
            config.hidden_size, config.num_attention_heads, config.intermediate_size)
        n_layers, eps, act = config.num_hidden_layers, config.layer_norm_eps, config.hidden_act
    n_ctx = int(config.max_position_embeddings) - _position_offset(config)
    return dict(
        d_model=int(d_model), d_head=int(d_model) // int(n_heads), n_heads=int(n_heads),
        d_mlp=int(d_mlp), n_layers=int(n_layers), n_ctx=n_ctx, eps=float(eps),
        d_vocab=int(config.vocab_size), act_fn=_ACTIVATIONS[act],
        attention_dir="bidirectional", normalization_type="LN",
        original_architecture="BertForMaskedLM", device=device, dtype=dtype,
    )


def _position_offset(config: Any) -> int:
    return int(config.pad_token_id) + 1 if family_of(config) in ("roberta", "xlm-roberta") else 0


def _two_rows(table: Tensor) -> Tensor:
    """A token-type table padded (with zeros) or kept at HookedEncoder's two rows."""
    if table.shape[0] >= 2:
        return table[:2]
    return torch.cat([table, torch.zeros(2 - table.shape[0], table.shape[1], dtype=table.dtype,
                                         device=table.device)])


def _heads(weight: Tensor, n_heads: int, pattern: str) -> Tensor:
    return einops.rearrange(weight, pattern, i=n_heads)


def encoder_state_dict(encoder: Any, config: Any) -> dict[str, Tensor]:
    """HookedEncoder ``embed.*`` and ``blocks.*`` weights from an HF bare encoder
    (``BertModel``, ``RobertaModel``, ``DistilBertModel``, ``ElectraModel``, ...)."""
    family = family_of(config)
    n = int(config.n_heads if family == "distilbert" else config.num_attention_heads)
    emb = encoder.embeddings
    d_model = emb.word_embeddings.weight.shape[1]
    types = (torch.zeros(2, d_model, dtype=emb.word_embeddings.weight.dtype)
             if family == "distilbert" else _two_rows(emb.token_type_embeddings.weight))
    sd: dict[str, Tensor] = {
        "embed.embed.W_E": emb.word_embeddings.weight,
        "embed.pos_embed.W_pos": emb.position_embeddings.weight[_position_offset(config):],
        "embed.token_type_embed.W_token_type": types,
        "embed.ln.w": emb.LayerNorm.weight,
        "embed.ln.b": emb.LayerNorm.bias,
    }
    layers = encoder.transformer.layer if family == "distilbert" else encoder.encoder.layer
    for i, layer in enumerate(layers):
        if family == "distilbert":
            att = layer.attention
            q, k, v, o = att.q_lin, att.k_lin, att.v_lin, att.out_lin
            ln1, w_in, w_out, ln2 = (
                layer.sa_layer_norm, layer.ffn.lin1, layer.ffn.lin2, layer.output_layer_norm)
        else:
            att = layer.attention
            q, k, v = att.self.query, att.self.key, att.self.value
            o, ln1 = att.output.dense, att.output.LayerNorm
            w_in, w_out, ln2 = layer.intermediate.dense, layer.output.dense, layer.output.LayerNorm
        p = f"blocks.{i}."
        for name, lin in (("Q", q), ("K", k), ("V", v)):
            sd[f"{p}attn.W_{name}"] = _heads(lin.weight, n, "(i h) m -> i m h")
            sd[f"{p}attn.b_{name}"] = _heads(lin.bias, n, "(i h) -> i h")
        sd[f"{p}attn.W_O"] = _heads(o.weight, n, "m (i h) -> i h m")
        sd[f"{p}attn.b_O"] = o.bias
        sd[f"{p}ln1.w"], sd[f"{p}ln1.b"] = ln1.weight, ln1.bias
        sd[f"{p}mlp.W_in"], sd[f"{p}mlp.b_in"] = w_in.weight.T, w_in.bias
        sd[f"{p}mlp.W_out"], sd[f"{p}mlp.b_out"] = w_out.weight.T, w_out.bias
        sd[f"{p}ln2.w"], sd[f"{p}ln2.b"] = ln2.weight, ln2.bias
    return {k: v.detach().clone() for k, v in sd.items()}


def bare_encoder(hf_model: Any) -> Any:
    """The bare HF encoder inside a ``*ForSequenceClassification`` / ``EncoderWithHead``."""
    return FAMILIES[family_of(hf_model.config)].encoder_of(hf_model)

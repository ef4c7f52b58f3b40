"""Reading a trained QKAN: edge activations, sparsity regularisation, attribution and pruning.

Every edge (j, i) of a layer contributes its full activation

    phi_ji(x_i) = m_ji [ c_ji (f_ji(x_i) + d_ji) + beta_ji base(x_i) ],   y_j = sum_i phi_ji + bias_j

to the node it feeds. Its scale over a batch is |phi_ji|_1 = mean_n |phi_ji(x_n,i)| (as in KAN,
arXiv 2404.19756, section 2.5). Regularisation penalises the L1 norm and the entropy of these
scales; attribution propagates importance from the outputs back to the inputs; pruning removes
hidden nodes and masks edges whose importance (share of the outputs' variation) is below a
threshold.
"""

from __future__ import annotations

from typing import Iterator, NamedTuple

import torch
from torch import nn

from qkan._checks import check_number
from qkan.layers import QKANLayer

__all__ = [
    "edge_activations", "regularization", "Attribution", "attribution", "PrunePlan", "prune_plan", "prune",
    "prune_input",
]  # fmt: skip


def _check_batch(model: nn.Module, x) -> torch.Tensor:
    """x (N, in) for `model`; ValueError otherwise."""
    in_dim = model.layers[0].in_dim
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[-1] != in_dim or x.shape[0] < 1:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"`x` must be a tensor of shape (N >= 1, {in_dim}); got {shape}")
    return x


def edge_activations(layer: QKANLayer, x: torch.Tensor) -> torch.Tensor:
    """Full edge contributions phi_ji(x_i) of one layer: x (N, I) -> (N, O, I).

    Masked edges are exactly 0, and ``edge_activations(layer, x).sum(-1) + bias`` is ``layer(x)``.
    """
    return layer.edge_contributions(layer.edge_outputs(x), x.reshape(-1, layer.in_dim))


def _layer_activations(model: nn.Module, x: torch.Tensor) -> Iterator[tuple[QKANLayer, torch.Tensor]]:
    """(layer, phi (N, O, I)) for every layer, each on the input it receives in the model."""
    for layer, h in model.layer_inputs(x):
        yield layer, edge_activations(layer, h)


def _entropy(scale: torch.Tensor) -> torch.Tensor:
    """Entropy of the normalised edge scales p = s / sum(s) of one layer (natural log)."""
    p = scale / (scale.sum() + torch.finfo(scale.dtype).tiny)
    return -(p * torch.log(p + torch.finfo(scale.dtype).eps)).sum()


def regularization(model: nn.Module, x: torch.Tensor, l1: float = 1.0, entropy: float = 2.0, coef: float = 0.0) -> torch.Tensor:
    r"""Sparsity penalty of KAN, summed over layers (differentiable scalar).

    .. math::
        \sum_l \Big[ \lambda_{1} \sum_{ji} |\phi_{ji}|_1 + \lambda_{S} S(p_l)
        + \lambda_{c} \sum_{ji} m_{ji} \sum_{n \ge 1} (|a^{ji}_n| + |b^{ji}_n|) \Big],
        \quad p_l = |\phi|_1 / \sum |\phi|_1

    Args:
        model: a QKAN (anything with ``.layers`` of QKANLayer).
        x: (N, in) batch the scales are measured on.
        l1: weight of the L1 norm of the edge scales.
        entropy: weight of the entropy of the normalised edge scales of each layer.
        coef: weight of the L1 norm of the non-constant Fourier coefficients of the unmasked edges
            (needs ``layer.fourier_coefficients()``: closed-form ansatz, fixed encoding).
    Returns:
        scalar tensor (the parameters' dtype).
    """
    l1, entropy, coef = check_number("l1", l1), check_number("entropy", entropy), check_number("coef", coef)
    x = _check_batch(model, x)
    total = x.new_zeros(())
    for layer, phi in _layer_activations(model, x):
        scale = phi.abs().mean(0)  # (O, I)
        total = total + l1 * scale.sum() + entropy * _entropy(scale)
        if coef:
            coeffs = layer.fourier_coefficients()[..., 1:]  # (O, I, 2R): a_1..a_R, b_1..b_R
            total = total + coef * (layer.mask.unsqueeze(-1) * coeffs.abs()).sum()
    return total


class Attribution(NamedTuple):
    """Importance scores of a model's edges and nodes.

    Attributes:
        edges: per layer l, (O_l, I_l) scores of the edges.
        nodes: per node layer (inputs, hidden..., outputs), (n_l,) scores; outputs are 1.
    """

    edges: list[torch.Tensor]
    nodes: list[torch.Tensor]


def attribution(model: nn.Module, x: torch.Tensor) -> Attribution:
    """Edge and node importance, propagated from the outputs back to the inputs.

    An edge's strength is how much it varies over the batch, the standard deviation
    sigma_ji = std_n phi_ji(x_n,i) (a constant edge carries no information about its input; as in
    pykan 0.2). Each output node has score 1; a node's score is shared among its incoming edges in
    proportion to their strengths, and an input node's score is the sum of its outgoing edges':

        E_l[j, i] = s_{l+1}[j] sigma_ji / sum_k sigma_jk,     s_l[i] = sum_j E_l[j, i]

    so scores are fractions of the outputs' attention (the input scores sum to the number of
    outputs, less what reaches nodes whose incoming edges are all constant or masked).

    Args:
        model: a QKAN.
        x: (N, in) representative inputs.
    Returns:
        Attribution(edges, nodes), detached.
    """
    x = _check_batch(model, x)
    with torch.no_grad():
        scales = [phi.std(0, correction=0) for _, phi in _layer_activations(model, x)]  # each (O, I)
        nodes = [torch.ones(model.layers[-1].out_dim, dtype=scales[-1].dtype, device=scales[-1].device)]
        edges = []
        for scale in reversed(scales):
            total = scale.sum(-1, keepdim=True)  # (O, 1)
            share = torch.where(total > 0, scale / total.clamp_min(torch.finfo(scale.dtype).tiny), torch.zeros_like(scale))
            edge = share * nodes[0].unsqueeze(-1)  # (O, I)
            edges.insert(0, edge)
            nodes.insert(0, edge.sum(0))
    return Attribution(edges, nodes)


class PrunePlan(NamedTuple):
    """What pruning keeps, in terms of the original model.

    Attributes:
        nodes: per node layer, sorted int64 indices of the kept nodes (inputs and outputs: all).
        masks: per layer, (O_l, I_l) 0/1 masks on the original model: the pruned model equals the
            original with these masks.
    """

    nodes: list[torch.Tensor]
    masks: list[torch.Tensor]


def prune_plan(model: nn.Module, node_th: float = 1e-2, edge_th: float = 3e-2, x: torch.Tensor | None = None) -> PrunePlan:
    """Decide which hidden nodes and edges to keep (see :func:`prune`); the model is not changed."""
    node_th, edge_th = check_number("node_th", node_th), check_number("edge_th", edge_th)
    att = attribution(model, _reference(model, x))
    masks = [layer.mask.detach().clone() * (edge >= edge_th) for layer, edge in zip(model.layers, att.edges)]
    keep = [torch.ones_like(s, dtype=torch.bool) for s in att.nodes]
    for l in range(len(keep) - 2, 0, -1):  # hidden node layers, last first so removals cascade back
        keep[l] = att.nodes[l] >= node_th
        keep[l] &= masks[l].bool().any(0)  # a node whose outgoing edges are all gone goes too
        if not keep[l].any():  # a layer needs one node; keep the best one with its edges masked
            keep[l][att.nodes[l].argmax()] = True
        masks[l][:, ~keep[l]] = 0
        masks[l - 1][~keep[l], :] = 0
    return PrunePlan([k.nonzero().flatten() for k in keep], masks)


def prune(model: nn.Module, node_th: float = 1e-2, edge_th: float = 3e-2, x: torch.Tensor | None = None) -> nn.Module:
    """A new, smaller QKAN without unimportant hidden nodes and with unimportant edges masked.

    Scores come from :func:`attribution` on `x`. A hidden node is removed when its score is below
    `node_th` or none of its outgoing edges is kept; an edge is masked (``layer.mask = 0``) when its
    score is below `edge_th` or it touches a removed node. Inputs and outputs are always kept.
    The pruned model computes exactly what the original computes with the masks of
    :func:`prune_plan`; parameters are sliced copies (grouped theta keeps its leading 1s).

    Args:
        model: a QKAN.
        node_th: node score threshold (fraction of the outputs' attention), >= 0.
        edge_th: edge score threshold, >= 0.
        x: (N, in) inputs the scores are measured on; None uses ``model.reference_input``.
    Returns:
        a new QKAN (the original is unchanged).
    """
    plan = prune_plan(model, node_th, edge_th, x)
    layers = [
        layer.sliced(plan.nodes[l + 1], plan.nodes[l], plan.masks[l]) for l, layer in enumerate(model.layers)
    ]
    pruned = type(model).from_layers(layers)
    if model.reference_input is not None:
        pruned.reference_input = model.reference_input[:, plan.nodes[0]]
    return pruned


def _reference(model: nn.Module, x: torch.Tensor | None) -> torch.Tensor:
    """x, else the model's reference_input; ValueError when neither exists."""
    if x is None:
        x = getattr(model, "reference_input", None)
        if x is None:
            raise ValueError("`x` is required: the model has no `reference_input` (fit() sets it)")
    return _check_batch(model, x)


def _all(n: int, like: torch.Tensor) -> torch.Tensor:
    """Indices 0..n-1 on like's device."""
    return torch.arange(n, device=like.device)


def prune_input(model: nn.Module, threshold: float = 1e-2, x: torch.Tensor | None = None) -> nn.Module:
    """A new QKAN without the inputs whose attribution score is below `threshold`.

    Input scores are ``attribution(model, x).nodes[0]`` (fractions of the outputs' attention).
    The best input is always kept. The first layer's edges from a dropped input are replaced by
    their mean over `x` (folded into the post bias d of a kept edge of the same output), so

        pruned(x[:, pruned.kept_inputs]) == model(x)

    exactly where the dropped edges are constant over `x`, and up to their spread otherwise.

    Args:
        model: a QKAN.
        threshold: input score threshold, >= 0.
        x: (N, in) inputs the scores and means are measured on; None uses ``model.reference_input``.
    Returns:
        a new QKAN with ``kept_inputs`` (sorted list of the original input indices it takes);
        the original is unchanged.
    """
    threshold = check_number("threshold", threshold)
    x = _reference(model, x)
    scores = attribution(model, x).nodes[0]  # (I,)
    keep = scores >= threshold
    keep[scores.argmax()] = True
    cols = keep.nonzero().flatten()
    first = model.layers[0]
    new = first.sliced(_all(first.out_dim, cols), cols)
    with torch.no_grad():
        dropped = edge_activations(first, x)[:, :, ~keep].mean(0).sum(-1)  # (O,): mean of the dropped edges
        scale = new.mask * new.post_weight  # (O, I'): d of edge (j, i) enters as scale_ji * d_ji
        for j in range(new.out_dim):
            if dropped[j] == 0:
                continue
            target = int(scale[j].abs().argmax())
            if scale[j, target] == 0:
                raise ValueError(
                    f"cannot drop inputs {(~keep).nonzero().flatten().tolist()}: output {j} of the first layer "
                    "has no unmasked kept edge to carry their constant contribution"
                )
            new.post_bias[j, target] += dropped[j] / scale[j, target]
    rest = [layer.sliced(_all(layer.out_dim, cols), _all(layer.in_dim, cols)) for layer in model.layers[1:]]
    pruned = type(model).from_layers([new, *rest])
    pruned.kept_inputs = cols.tolist()
    if model.reference_input is not None:
        pruned.reference_input = model.reference_input[:, cols]
    return pruned

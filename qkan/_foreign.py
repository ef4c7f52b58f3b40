"""Names from pykan and the published qkan package (0.2.3) -> this package's equivalent.

The one table behind the migration errors (docs: "Coming from pykan or the published qkan"):
- keyword arguments: QKANLayer, QKAN, QKAN.fit and QKAN.plot raise one TypeError listing every
  foreign keyword of the call with ours (``reject_foreign``);
- methods: ``model.train_(...)``, ``model.refine(...)``, ... raise an AttributeError naming ours
  (``foreign_attribute``, from ``QKAN.__getattr__``);
- imports: ``from qkan import create_dataset, KAN`` raise an ImportError naming ours
  (``foreign_import``, from the package's ``__getattr__``).
"""

from __future__ import annotations

import inspect
from typing import Callable

__all__ = ["FOREIGN_NAMES", "FOREIGN_METHODS", "FOREIGN_IMPORTS", "reject_foreign", "foreign_attribute", "foreign_import"]

_REPS = "reps= (a DARUAN edge has no spline grid: reps sets its Fourier degree)"
_ALWAYS = "nothing: {} is always trainable here (freeze it with param.requires_grad_(False))"
_NO_GRID = "nothing (no grid to update)"
_PLOT = "model.plot(path, x=, in_vars=, out_vars=, n_points=, figsize=)"

#: their keyword argument -> ours
_KEYWORDS: dict[str, str] = {
    # layer / model constructors
    "preact_trainable": 'encoding="edge" (True) or encoding="fixed" (False, the default)',
    "preact_init": 'encoding="edge" (trainable encodings start at w = 1, b = 0)',
    "fast_measure": 'measure="amplitude" (True: |alpha| - |beta|) or measure="z" (False, <Z>, the default)',
    "solver": 'evaluator= ("auto", "fourier", "su2", "pennylane", "qiskit")',
    "solver_kwargs": "evaluator_options=",
    "qml_device": 'evaluator="pennylane", evaluator_options={"device": ...}',
    "theta_size": "ansatz= (the ansatz fixes the angles per repetition)",
    "base_activation": "base=",
    "base_fun": "base=",
    "ba_trainable": _ALWAYS.format("base_weight"),
    "postact_weight_trainable": _ALWAYS.format("post_weight"),
    "postact_bias_trainable": _ALWAYS.format("post_bias"),
    "sb_trainable": _ALWAYS.format("base_weight"),
    "sp_trainable": _ALWAYS.format("post_weight"),
    "affine_trainable": 'encoding="edge" (a trainable w x + b per edge) and bias=True',
    "c_dtype": "dtype= (real parameters; the evaluators choose their internal precision)",
    "p_dtype": "dtype=",
    "p_dim": "nothing (parameters always have their natural shape)",
    "grid": _REPS,
    "k": _REPS,
    "grid_range": "nothing: scale the inputs (or use encoding='edge', which learns w x + b)",
    "grid_eps": _REPS,
    "mult_arity": "nothing (no multiplication nodes)",
    "noise_scale": 'theta_init= ("xavier", "normal", "uniform")',
    "scale_base_mu": 'base_init= ("uniform" in [-1, 1] / sqrt(in_dim), the default, or a constant such as 0.5)',
    "scale_base_sigma": 'base_init= ("uniform" in [-1, 1] / sqrt(in_dim), the default, or a constant such as 0.5)',
    "sparse_init": "nothing (prune after training: model.prune())",
    "save_act": "nothing: qkan.attribution and model.plot compute what they need",
    "is_batchnorm": "nothing (no batch norm inside QKAN layers)",
    "checkpoint_reps": "nothing",
    "symbolic_enabled": "model.symbolic() (exact formulas from the Fourier coefficients)",
    "auto_save": "model.save(path)",
    "ckpt_path": "model.save(path) / QKAN.load(path)",
    "first_init": "nothing",
    "state_id": "nothing",
    "round": "nothing",
    # training
    "opt": 'optimizer= ("lbfgs", "adam", "adam+lbfgs", a stage list or a torch optimizer)',
    "loss_fn": "loss=",
    "lamb": "reg=",
    "lamb_l1": "reg_options=",
    "lamb_entropy": "reg_options=",
    "lamb_coef": "reg_options=",
    "lamb_coefdiff": "reg_options=",
    "reg_metric": "reg_options=",
    "lamb_theta_l1": "reg= / reg_options=",
    "verbose": "progress=",
    "display_metrics": "progress= and log=",
    "metrics": "callbacks= (called after every step with the logged metrics)",
    "closure": "nothing: fit builds the closure (or pass a torch optimizer instance)",
    "update_grid": _NO_GRID,
    "grid_update_num": _NO_GRID,
    "stop_grid_update_step": _NO_GRID,
    "start_grid_update_step": _NO_GRID,
    "clip_theta_grad_norm": "callbacks= (or a torch optimizer instance)",
    "prune_every": "model.prune() after training",
    "prune_threshold": "model.prune(node_th=, edge_th=)",
    "save_fig": "model.plot(path)",
    "img_folder": "model.plot(path)",
    "singularity_avoiding": "nothing",
    "y_th": "nothing",
    # plot (pykan's plot draws stored activations; ours evaluates the edges on x)
    "from_acts": _PLOT + " (the curves are evaluated on x, nothing is stored)",
    "folder": "model.plot(path)",
    "beta": _PLOT + " (edges fade with their attribution score)",
    "scale": "figsize=",
    "metric": _PLOT + " (edges fade with qkan.attribution scores)",
    "mask": "model.prune() (masked edges are not drawn)",
    "mode": _PLOT,
    "title": "the returned matplotlib Figure (fig.suptitle(...))",
    "varscale": "figsize=",
    "sample": _PLOT,
    "plot_full": _PLOT,
}

#: their method of a model -> ours
FOREIGN_METHODS: dict[str, str] = {
    "train_": "model.fit(dataset, ...)",
    "refine": "model.extend(reps)",
    "layer_extension": "model.extend(reps)",
    "initialize_from_another_model": "model.extend(reps) (keeps the function)",
    "symbolic_formula": "model.symbolic() (exact) or model.auto_symbolic() (short library formulas)",
    "fix_symbolic": "model.auto_symbolic(lib=...) (fits every edge to a library function)",
    "unfix_symbolic": "nothing (symbolic formulas are read from the model, it is never changed)",
    "suggest_symbolic": "model.auto_symbolic(...).table() (the chosen function and R^2 per edge)",
    "saveckpt": "model.save(path)",
    "loadckpt": "QKAN.load(path)",
    "attribute": "qkan.attribution(model, x)",
    "node_attribute": "qkan.attribution(model, x).nodes",
    "feature_score": "qkan.attribution(model, x).nodes[0]",
    "get_reg": "qkan.regularization(model, x)",
    "reg": "qkan.regularization(model, x)",
    "prune_node": "model.prune(node_th=...)",
    "prune_edge": "model.prune(edge_th=...)",
    "remove_edge": "model.prune() (masks edges below edge_th)",
    "remove_node": "model.prune() (removes nodes below node_th)",
    "update_grid": _NO_GRID,
    "update_grid_from_samples": _NO_GRID,
    "get_act": "model.plot(path) (evaluates every edge) or model.layers[l](x)",
    "copy": "copy.deepcopy(model)",
}

#: their module-level name -> ours
FOREIGN_IMPORTS: dict[str, str] = {
    "create_dataset": "qkan.data.function_dataset",
    "get_feynman_dataset": 'qkan.data.feynman(name, source="published")',
    "KAN": "qkan.QKAN(width, reps=...) (a DARUAN on every edge instead of a spline)",
    "MultKAN": "qkan.QKAN(width, reps=...) (no multiplication nodes)",
    "KANLayer": "qkan.QKANLayer(in_dim, out_dim, reps=...)",
    "ex_round": "sympy: expr.xreplace({n: round(n, digits) for n in expr.atoms(sympy.Number)})",
    "torch_exact_solver": 'evaluator="auto" (the closed form; "su2" for a fused statevector)',
    "qml_solver": 'evaluator="pennylane"',
}

#: every foreign name -> ours (keywords, methods and imports; the migration docs list this table)
FOREIGN_NAMES: dict[str, str] = {**_KEYWORDS, **FOREIGN_METHODS, **FOREIGN_IMPORTS}

_THEIRS = "pykan / qkan 0.2.3"


def reject_foreign(where: str, kwargs: dict, accepts: Callable | None = None) -> None:
    """Raise one TypeError listing every keyword in `kwargs` (`where` got them), with ours where we know it.

    Called with the leftover ``**kwargs`` of a public entry point; does nothing when it is
    empty. With `accepts` (a callable the keywords are passed on to), its keyword parameters
    are let through and only the others are reported.
    """
    if accepts is not None:
        known = inspect.signature(accepts).parameters
        kwargs = {k: v for k, v in kwargs.items() if k not in known}
    if not kwargs:
        return
    foreign = [name for name in kwargs if name in _KEYWORDS]
    unknown = [name for name in kwargs if name not in _KEYWORDS]
    if len(kwargs) == 1:
        name = next(iter(kwargs))
        if foreign:
            raise TypeError(f"{where} got the {_THEIRS} argument `{name}`; here use {_KEYWORDS[name]}")
        raise TypeError(f"{where} got an unexpected keyword argument `{name}`")
    lines = [f"{where} got {len(kwargs)} keyword arguments it does not take:"]
    lines += [f"- the {_THEIRS} argument `{name}`; here use {_KEYWORDS[name]}" for name in foreign]
    lines += [f"- an unexpected keyword argument `{name}`" for name in unknown]
    raise TypeError("\n".join(lines))


def foreign_attribute(where: str, name: str) -> AttributeError:
    """The AttributeError for a missing attribute `name` of a `where` object: ours when it is a foreign method."""
    if name in FOREIGN_METHODS:
        return AttributeError(f"'{where}' has no method `{name}` (a {_THEIRS} name); here use {FOREIGN_METHODS[name]}", name=name)
    return AttributeError(f"'{where}' object has no attribute '{name}'", name=name)


def foreign_import(module: str, name: str) -> ImportError | AttributeError:
    """The error for a missing module attribute `name`: an ImportError naming ours for a foreign name.

    An ImportError (not an AttributeError) so that ``from qkan import create_dataset`` shows
    the message: Python replaces an AttributeError of a from-import with a generic one.
    """
    if name in FOREIGN_IMPORTS:
        return ImportError(f"`{module}.{name}` is a {_THEIRS} name; here use {FOREIGN_IMPORTS[name]}", name=name)
    return AttributeError(f"module {module!r} has no attribute {name!r}", name=name)

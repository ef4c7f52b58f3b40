"""Names from pykan and the published qkan package (0.2.3) -> this package's equivalent.

The one table behind the migration errors: QKANLayer, QKAN and QKAN.fit raise a TypeError that
names our equivalent when they get one of these keyword arguments (README, "Coming from pykan or
the published qkan").
"""

from __future__ import annotations

__all__ = ["FOREIGN_NAMES", "reject_foreign"]

_REPS = "reps= (a DARUAN edge has no spline grid: reps sets its Fourier degree)"
_ALWAYS = "nothing: {} is always trainable here (freeze it with param.requires_grad_(False))"

#: their keyword or method name -> ours
FOREIGN_NAMES: dict[str, str] = {
    # layer / model constructors
    "preact_trainable": 'encoding="edge" (True) or encoding="fixed" (False, the default)',
    "preact_init": 'encoding="edge" (trainable encodings start at w = 1, b = 0)',
    "fast_measure": 'measure="amplitude" (True: |alpha| - |beta|) or measure="z" (False, <Z>, the default)',
    "solver": 'evaluator= ("auto", "fourier", "su2", "pennylane", "qiskit")',
    "solver_kwargs": "evaluator_options=",
    "qml_device": 'evaluator="pennylane", evaluator_options={"device": ...}',
    "theta_size": "ansatz= (the ansatz fixes the angles per repetition)",
    "base_activation": "base=",
    "ba_trainable": _ALWAYS.format("base_weight"),
    "postact_weight_trainable": _ALWAYS.format("post_weight"),
    "postact_bias_trainable": _ALWAYS.format("post_bias"),
    "c_dtype": "dtype= (real parameters; the evaluators choose their internal precision)",
    "p_dtype": "dtype=",
    "p_dim": "nothing (parameters always have their natural shape)",
    "grid": _REPS,
    "k": _REPS,
    "grid_range": "nothing: scale the inputs (or use encoding='edge', which learns w x + b)",
    "grid_eps": _REPS,
    "noise_scale": 'theta_init= ("xavier", "normal", "uniform")',
    "scale_base_mu": 'base_init= ("uniform" in [-1, 1] / sqrt(in_dim), the default, or a constant such as 0.5)',
    "scale_base_sigma": 'base_init= ("uniform" in [-1, 1] / sqrt(in_dim), the default, or a constant such as 0.5)',
    "save_act": "nothing: qkan.attribution and model.plot compute what they need",
    "is_batchnorm": "nothing (no batch norm inside QKAN layers)",
    "checkpoint_reps": "nothing",
    "symbolic_enabled": "model.symbolic() (exact formulas from the Fourier coefficients)",
    "auto_save": "model.save(path)",
    "ckpt_path": "model.save(path) / QKAN.load(path)",
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
    "update_grid": "nothing (no grid to update)",
    "grid_update_num": "nothing (no grid to update)",
    "stop_grid_update_step": "nothing (no grid to update)",
    "start_grid_update_step": "nothing (no grid to update)",
    "clip_theta_grad_norm": "callbacks= (or a torch optimizer instance)",
    "prune_every": "model.prune() after training",
    "prune_threshold": "model.prune(node_th=, edge_th=)",
    "save_fig": "model.plot(path)",
    "img_folder": "model.plot(path)",
    "singularity_avoiding": "nothing",
    "y_th": "nothing",
    # methods and functions (documented here; reached by attribute, not as keywords)
    "train_": "model.fit(dataset, ...)",
    "refine": "model.extend(reps)",
    "layer_extension": "model.extend(reps)",
    "create_dataset": "qkan.data.function_dataset",
    "get_feynman_dataset": 'qkan.data.feynman(name, source="published")',
    "initialize_from_another_model": "model.extend(reps) (keeps the function)",
}


def reject_foreign(where: str, kwargs: dict) -> None:
    """Raise TypeError for any keyword in `kwargs` (`where` got it): name our equivalent if we know it.

    Called with the leftover ``**kwargs`` of a public entry point; does nothing when it is empty.
    """
    for name in kwargs:
        ours = FOREIGN_NAMES.get(name)
        if ours:
            raise TypeError(f"{where} got the pykan / qkan 0.2.3 argument `{name}`; here use {ours}")
        raise TypeError(f"{where} got an unexpected keyword argument `{name}`")

"""QKAN: a stack of QKANLayers (pykan-style width list) with training, extension and I/O."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import torch
from torch import nn

from qkan._checks import check_int
from qkan._foreign import FOREIGN_METHODS, foreign_attribute, reject_foreign
from qkan._io import atomic_save, load_checkpoint
from qkan.layers import QKANLayer

__all__ = ["QKAN"]

#: layer options that are runtime choices or tensors' placement, not part of a saved config
_RUNTIME_OPTIONS = ("evaluator", "evaluator_options", "device", "dtype")
_FORMAT = "qkan.QKAN/1"


def _parse_dtype(dtype):
    """torch.dtype, a name like "float64", or None -> torch.dtype or None."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    value = getattr(torch, str(dtype).removeprefix("torch."), None)
    if not isinstance(value, torch.dtype) or not value.is_floating_point:
        raise ValueError(f"`dtype` must be a floating torch dtype or its name (e.g. 'float64'); got {dtype!r}")
    return value


class QKAN(nn.Module):
    """Quantum-classical Kolmogorov-Arnold network.

    Args:
        width: layer widths, e.g. [2, 5, 1] (at least two entries).
        reps: DARUAN repetitions per edge.
        **layer_options: keyword options of QKANLayer (ansatz, encoding, base, group,
            evaluator, measure, bias, seed, device, dtype); layer i is seeded with seed + i.
            ``dtype`` may also be given by name ("float64").

    Shape:
        (*, width[0]) -> (*, width[-1])

    Deep px models: a px layer needs its encoded angles in [-1, 1]. The first layer's inputs
    are the user's (checked, ValueError outside the domain); every later px layer receives
    tanh of the previous layer's output (``QKANLayer.hidden_input``), so a px QKAN of any depth
    is defined on all of [-1, 1]^width[0]. Models of the other ansaetze pass hidden values on
    unchanged.

    Examples:
        >>> from qkan.data import function_dataset
        >>> data = function_dataset(lambda x: torch.sin(x[:, :1]) * x[:, 1:], n_var=2, train_num=100, test_num=100)
        >>> model = QKAN([2, 3, 1], reps=2, seed=0)
        >>> history = model.fit(data, steps=5, progress=False)
        >>> sorted(history)[:3]
        ['loss', 'step', 'test_loss']
    """

    def __init__(self, width: list[int], reps: int = 3, **layer_options) -> None:
        super().__init__()
        reject_foreign("QKAN", layer_options, accepts=QKANLayer)  # every foreign keyword in one error
        if not isinstance(width, (list, tuple)):
            raise TypeError(f"`width` must be a list of at least two layer sizes; got {type(width).__name__}")
        if len(width) < 2:
            raise ValueError(f"`width` must be a list of at least two layer sizes; got {width!r}")
        for k, w in enumerate(width):
            check_int(f"width[{k}]", w)
        seed = layer_options.pop("seed", None)
        check_int("seed", seed, low=0, high=2**63 - 1 - len(width), allow_none=True)
        if "dtype" in layer_options:
            layer_options["dtype"] = _parse_dtype(layer_options["dtype"])
        layers = [
            QKANLayer(i, o, reps, seed=None if seed is None else seed + k, **layer_options)
            for k, (i, o) in enumerate(zip(width[:-1], width[1:]))
        ]
        self._adopt(layers)

    def __getattr__(self, name: str):
        """Parameters and submodules (nn.Module); a pykan / qkan 0.2.3 method name gets ours in the error."""
        if name in FOREIGN_METHODS:
            raise foreign_attribute("QKAN", name)
        return super().__getattr__(name)

    def _adopt(self, layers: list[QKANLayer]) -> None:
        """Take `layers` as this model's stack (all model state is derived from them)."""
        self.layers = nn.ModuleList(layers)
        self.register_buffer("reference_input", None)

    @classmethod
    def from_layers(cls, layers: list[QKANLayer]) -> QKAN:
        """A QKAN made of existing layers (consecutive sizes must match; all share reps)."""
        if not layers or not all(isinstance(layer, QKANLayer) for layer in layers):
            raise TypeError("`layers` must be a non-empty list of QKANLayer")
        for k, (a, b) in enumerate(zip(layers[:-1], layers[1:])):
            if a.out_dim != b.in_dim:
                raise ValueError(f"`layers[{k + 1}]` takes {b.in_dim} inputs but layers[{k}] gives {a.out_dim} outputs")
        model = cls.__new__(cls)
        nn.Module.__init__(model)
        model._adopt(list(layers))
        return model

    @property
    def width(self) -> list[int]:
        """Node counts per layer of nodes: [in, hidden..., out] (derived from the layers)."""
        return [self.layers[0].in_dim] + [layer.out_dim for layer in self.layers]

    @property
    def reps(self) -> int:
        """DARUAN repetitions per edge (every layer has the same)."""
        return self.layers[0].reps

    @property
    def seed(self) -> int | None:
        """The initialisation seed (layer k was seeded with seed + k)."""
        return self.layers[0].seed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(*, width[0]) -> (*, width[-1]); the input is validated once here."""
        for layer, h in self.layer_inputs(x):
            pass
        return layer.evaluate(h).reshape(*x.shape[:-1], self.width[-1])

    def layer_inputs(self, x: torch.Tensor) -> Iterator[tuple[QKANLayer, torch.Tensor]]:
        """Every layer with the input it receives inside the model, in order: (layer, h (N, I_k)).

        x (*, width[0]) is validated once and flattened to (N, width[0]); layer k > 0 receives
        ``layer.hidden_input`` of layer k-1's output (tanh for px, the output itself otherwise).
        Outputs are computed with ``layer.evaluate`` between the yields, except the last layer's:
        evaluate it from its input. forward, interpret, plotting and symbolic all read a model
        through this one loop.
        """
        h = self.layers[0].check_input(x)
        last = len(self.layers) - 1
        for k, layer in enumerate(self.layers):
            if k:
                h = layer.hidden_input(h)
            yield layer, h
            if k < last:
                h = layer.evaluate(h)

    def set_evaluator(self, name: str = "auto", **options) -> QKAN:
        """Switch every layer's evaluator (same parameters). Returns self."""
        for layer in self.layers:
            layer.set_evaluator(name, **options)
        return self

    @property
    def _factory(self) -> dict:
        p = self.layers[0].theta
        return {"device": p.device, "dtype": p.dtype}

    # --------------------------------------------------------------------------------- config
    def config(self) -> dict:
        """Plain-typed constructor arguments: ``QKAN(**model.config())`` rebuilds this model.

        Derived from the layers. The evaluator is a runtime choice and is not part of the config
        (a rebuilt model uses "auto"); the parameters' dtype is recorded by name.
        """
        options = self.layers[0].config()
        for key in ("in_dim", "out_dim"):
            options.pop(key)
        return {"width": self.width, **options, "dtype": str(self._factory["dtype"]).removeprefix("torch.")}

    # -------------------------------------------------------------------------------- training
    def fit(
        self,
        dataset: dict,
        steps: int | None = None,
        optimizer: str | list | type | torch.optim.Optimizer = "lbfgs",
        lr: float | None = None,
        batch: int | None = None,
        loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        progress: bool = True,
        reg: float = 0.0,
        reg_options: dict | None = None,
        log: int = 1,
        seed: int | None = 0,
        scheduler: Callable[[torch.optim.Optimizer], object] | None = None,
        callbacks: list[Callable[[int, nn.Module, dict], bool | None]] | None = None,
        **foreign,
    ) -> dict:
        """Train on a pykan-style dataset dict (``qkan.training.fit``).

        Defaults, chosen with benchmarks/reproduce.py (README, "Training defaults"): the
        published package's LBFGS (lr 0.5, history 100, no line search, up to 20 inner
        iterations per step) with a guard: after a step that does not lower the training
        objective (checked with one extra evaluation), that step is undone and the rest of the
        stage uses LBFGS with a strong-Wolfe line search (optimizer "lbfgs-wolfe"). Unguarded,
        the published recipe diverged to NaN in 3 of 6 quickstart runs here; the line search
        alone converged 2.4x less far on I.6.20. Every LBFGS sees the objective rescaled to
        about 1 whenever it falls below 1e-2 (exactly, with its history): torch's LBFGS drops
        curvature pairs with y.s <= 1e-10, so below MSE ~1e-6 it stalled (layer_ext to reps 5:
        2.3e-6 -> 1.1e-6 fixed, 1.3e-6 -> 2.6e-7 edge). Layers start with theta_init="xavier".

        Args:
            dataset: dict with train_input (N, I), train_label and test_input, test_label; float
                labels (N, O) are a regression (default loss MSE, metric RMSE), integer labels
                (N,) in [0, O) a classification (default loss cross entropy, metric accuracy).
                Tensors are moved to the model's device and dtype. ValueError naming the key for
                an empty split, a wrong shape or a NaN / infinite value, before any step.
            steps: optimizer steps (>= 1); None: 100, or the stages' total with a stage list.
            optimizer: "lbfgs" (default, guarded as above) | "lbfgs-wolfe" (LBFGS lr 1,
                history 10, strong-Wolfe line search) | "adam" (lr 1e-2) | "adam+lbfgs" (Adam for
                the first half of the steps, then LBFGS) | a stage list [(optimizer, steps) or
                (optimizer, steps, lr), ...] run in order | a torch.optim.Optimizer class (built
                on the trainable parameters) or instance (used as it is, unguarded).
            lr: learning rate; None: the optimizer's default (0.5 LBFGS, 1.0 LBFGS-Wolfe,
                1e-2 Adam; with "adam+lbfgs" `lr` is the LBFGS stage's).
            batch: samples per step drawn at random from the training set; None: all of them.
            loss: callable (prediction, label) -> scalar; None: MSE or cross entropy.
            progress: show a tqdm progress bar.
            reg: weight of ``qkan.interpret.regularization(model, x_batch, **reg_options)``.
            log: record the metrics every `log` steps (and after the last one).
            seed: seed of the minibatch sampler.
            scheduler: callable optimizer -> torch LR scheduler (e.g.
                ``lambda opt: torch.optim.lr_scheduler.StepLR(opt, 50, 0.5)``), built for every
                stage and stepped after every step (ReduceLROnPlateau with the step's loss).
            callbacks: callables ``cb(step, model, record)`` after every step; record holds
                "loss" and, on logged steps, the metrics. A callback returning True stops
                training after that step (its metrics are then recorded).

        Returns:
            history: dict of lists: step, loss (training objective of the step), train_loss,
            test_loss and train_rmse/test_rmse (regression) or train_acc/test_acc (classification).

        Raises:
            FloatingPointError: a step made the loss or a parameter NaN or infinite; the model
                is rolled back to the parameters from before that step and the message names
                the step and the tensor.
            TypeError: a keyword from pykan or the published qkan (e.g. ``opt``, ``lamb``);
                the message names ours.
        """
        from qkan.training import fit

        return fit(self, dataset, steps=steps, optimizer=optimizer, lr=lr, batch=batch, loss=loss, progress=progress,
                   reg=reg, reg_options=reg_options, log=log, seed=seed, scheduler=scheduler, callbacks=callbacks,
                   **foreign)  # fmt: skip


    # ------------------------------------------------------------------------------- extension
    def extend(self, reps: int) -> QKAN:
        """A new QKAN with `reps` repetitions per edge and the same function (docs/math.md, "Extension").

        Old repetitions and encodings are copied, the old final gates become repetition R, and
        the new slots are set so the tail after them cannot change <Z>:
        - pz, rpz: new angles 0, so the tail is diagonal (commutes with Z); new encodings
          keep the initial w = 1, b = 0, so the new frequencies are trainable at once.
        - mix, real (trainable encoding only): new encodings w = 0, b = 0 and angles chosen
          so every new repetition is the identity (real: X RY(pi) Z RY(0) = -I).
        - px is refused: the identity needs arccos(phi) = 0, i.e. phi = 1, where arccos has an
          infinite derivative, so the extended model could not be trained.
        Which rule applies is the ansatz spec's ``extension`` field.

        Returns a new model with the same layer settings, dtype, device and evaluator choice
        (``QKANLayer.derived``, the rule prune follows too); self is unchanged.
        """
        model_layers = [old.extended(reps) for old in self.layers]
        model = QKAN.from_layers(model_layers)
        model.reference_input = self.reference_input
        return model

    # ------------------------------------------------------------------------ other helpers
    def prune(self, node_th: float = 1e-2, edge_th: float = 3e-2, x: torch.Tensor | None = None) -> QKAN:
        """A smaller model without weak nodes and edges: see ``qkan.interpret.prune``."""
        from qkan.interpret import prune

        return prune(self, node_th, edge_th, x)

    def prune_input(self, threshold: float = 1e-2, x: torch.Tensor | None = None) -> QKAN:
        """A model without inputs whose attribution is below `threshold`: see ``qkan.interpret.prune_input``."""
        from qkan.interpret import prune_input

        return prune_input(self, threshold, x)

    def plot(self, path: str | Path | None = None, **kw):
        """Draw the network with every edge's curve: see ``qkan.plotting.plot_model``."""
        from qkan.plotting import plot_model

        reject_foreign("QKAN.plot", kw, accepts=plot_model)
        return plot_model(self, path, **kw)

    def symbolic(self, tol: float = 1e-8) -> list:
        """One sympy expression per output: see ``qkan.symbolic.model_formulas``."""
        from qkan.symbolic import model_formulas

        return model_formulas(self, tol)

    def auto_symbolic(self, lib: dict | list | None = None, r2_threshold: float = 0.999, **kw) -> list:
        """Short formulas, one per output, from a library fit of every edge: see ``qkan.symbolic.auto_symbolic``."""
        from qkan.symbolic import auto_symbolic

        return auto_symbolic(self, lib, r2_threshold, **kw)

    # --------------------------------------------------------------------------------- save/load
    def save(self, path: str | Path) -> None:
        """Write config and state_dict to `path` atomically (loadable with weights_only=True)."""
        state = {k: v.detach().cpu() for k, v in self.state_dict().items()}
        atomic_save({"format": _FORMAT, "config": self.config(), "state_dict": state}, path)

    @classmethod
    def load(cls, path: str | Path, map_location: str | torch.device | None = "cpu") -> QKAN:
        """Rebuild a model written by :meth:`save` (no code is executed while loading)."""
        blob = load_checkpoint(path, "a QKAN", _FORMAT, map_location)
        try:
            model = cls(**blob["config"])
            state = blob["state_dict"]
            if "reference_input" in state:
                model.reference_input = torch.empty_like(state["reference_input"])
            model.load_state_dict(state)
        except (TypeError, ValueError, RuntimeError, KeyError) as err:
            raise ValueError(f"cannot load a QKAN from {str(path)!r}: inconsistent checkpoint ({err})") from None
        return model

"""QKAN.fit: training on a pykan-style dataset dict, with optimizer stages, checks and rollback.

The defaults (LBFGS lr 0.5, history 100, no line search, falling back to a strong-Wolfe line
search after a step that does not lower the loss; an LBFGS objective rescaled to about 1 once it
falls below 1e-2, see _rescale_lbfgs; theta_init "xavier" in the layers) were chosen
with benchmarks/reproduce.py: see the README, "Training defaults".
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from qkan._checks import check_bool, check_int, check_number, check_type
from qkan._foreign import reject_foreign
from qkan._progress import progress_bar

__all__ = ["fit", "make_optimizer", "OPTIMIZERS", "DEFAULT_LR"]

#: optimizer names -> default learning rate
DEFAULT_LR = {"lbfgs": 0.5, "lbfgs-wolfe": 1.0, "adam": 1e-2}
#: names accepted by `optimizer` ("adam+lbfgs": the first half of the steps Adam, then LBFGS)
OPTIMIZERS = (*DEFAULT_LR, "adam+lbfgs")
DATASET_KEYS = ("train_input", "train_label", "test_input", "test_label")

#: fit rescales an LBFGS objective that fell below this (see _rescale_lbfgs)
RESCALE_BELOW = 1e-2

Stage = tuple[str | type | torch.optim.Optimizer, int, float | None]


def make_optimizer(params: list[nn.Parameter], optimizer, lr: float | None) -> torch.optim.Optimizer:
    """A torch optimizer from a name in DEFAULT_LR, an Optimizer class or instance.

    "lbfgs": torch.optim.LBFGS(lr 0.5, history_size 100, no line search: the published
    package's recipe; fit adds the fallback), "lbfgs-wolfe": LBFGS(lr 1, history 10, strong-Wolfe
    line search), "adam": Adam(lr 1e-2); each LBFGS step runs up to 20 inner iterations. `lr`
    None takes these defaults (an instance keeps its own).
    """
    if isinstance(optimizer, torch.optim.Optimizer):
        if lr is not None:
            raise ValueError("`lr` must be None when `optimizer` is an Optimizer instance (set it there)")
        return optimizer
    if isinstance(optimizer, str):
        if optimizer.lower() not in DEFAULT_LR:
            raise ValueError(f"`optimizer` must be one of {list(OPTIMIZERS)}, a stage list, an Optimizer class or instance; got {optimizer!r}")
        name = optimizer.lower()
        lr = DEFAULT_LR[name] if lr is None else lr
        if name == "adam":
            return torch.optim.Adam(params, lr=lr)
        wolfe = name == "lbfgs-wolfe"
        return torch.optim.LBFGS(
            params, lr=lr, history_size=10 if wolfe else 100, line_search_fn="strong_wolfe" if wolfe else None,
            tolerance_grad=1e-32, tolerance_change=1e-32,
        )  # fmt: skip
    if isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer):
        return optimizer(params) if lr is None else optimizer(params, lr=lr)
    raise TypeError(f"`optimizer` must be one of {list(OPTIMIZERS)}, a stage list, an Optimizer class or instance; got {optimizer!r}")


def _stages(optimizer, steps: int | None, lr: float | None) -> list[Stage]:
    """The optimizer argument as [(optimizer, steps, lr), ...] run in order."""
    if isinstance(optimizer, (list, tuple)):
        if lr is not None:
            raise ValueError("`lr` must be None with a stage list (give each stage its lr: (optimizer, steps, lr))")
        stages = []
        for k, stage in enumerate(optimizer):
            if not isinstance(stage, (list, tuple)) or len(stage) not in (2, 3):
                raise TypeError(f"`optimizer[{k}]` must be a pair (optimizer, steps) or a triple (optimizer, steps, lr); got {stage!r}")
            check_int(f"optimizer[{k}] steps", stage[1])
            stage_lr = check_number(f"optimizer[{k}] lr", stage[2], low=0.0, allow_none=True) if len(stage) == 3 else None
            stages.append((stage[0], stage[1], stage_lr))
        if not stages:
            raise ValueError("`optimizer` must be a non-empty stage list")
        total = sum(s[1] for s in stages)
        if steps is not None and steps != total:
            raise ValueError(f"`steps` must be None or the stages' total ({total}) with a stage list; got {steps}")
        return stages
    steps = 100 if steps is None else steps
    check_int("steps", steps)
    if isinstance(optimizer, str) and optimizer.lower() == "adam+lbfgs":
        first = steps // 2
        return [s for s in (("adam", first, None), ("lbfgs", steps - first, lr)) if s[1] > 0]
    return [(optimizer, steps, lr)]


def prepare_dataset(dataset, width: list[int], factory: dict) -> dict:
    """Validate a dataset dict and move it to the model's device (floats also to its dtype).

    Float labels (N, width[-1]) make a regression, integer labels (N,) in [0, width[-1]) a
    classification. ValueError naming the key for a missing key, a wrong shape, an empty split or a
    NaN / infinite value; TypeError for a non-tensor or a label dtype that is neither.
    """
    if not isinstance(dataset, dict):
        raise TypeError(f"`dataset` must be a dict with keys {list(DATASET_KEYS)}; got {type(dataset).__name__}")
    missing = [k for k in DATASET_KEYS if k not in dataset]
    if missing:
        raise ValueError(f"`dataset` must have the keys {list(DATASET_KEYS)}; missing {missing}")
    out = {}
    for key in DATASET_KEYS:
        t = dataset[key]
        check_type(f"dataset['{key}']", t, torch.Tensor)
        if key.endswith("input") and not t.is_floating_point():
            raise TypeError(f"`dataset['{key}']` must be a floating-point tensor; got {t.dtype}")
        if key.endswith("label") and (t.is_complex() or t.dtype == torch.bool):
            raise TypeError(f"`dataset['{key}']` must hold float (regression) or integer class labels; got {t.dtype}")
        out[key] = t.to(**factory) if t.is_floating_point() else t.to(factory["device"])
    n_out = width[-1]
    for split in ("train", "test"):
        x, y = out[f"{split}_input"], out[f"{split}_label"]
        if x.dim() != 2 or x.shape[1] != width[0]:
            raise ValueError(f"`dataset['{split}_input']` must have shape (N, {width[0]}); got {tuple(x.shape)}")
        if x.shape[0] == 0:
            raise ValueError(f"`dataset['{split}_input']` is empty (0 samples): fit needs at least one per split")
        expected = (x.shape[0], n_out) if y.is_floating_point() else (x.shape[0],)
        if tuple(y.shape) != expected:
            raise ValueError(
                f"`dataset['{split}_label']` must have shape {expected} (float labels: (N, {n_out}), "
                f"integer class labels: (N,)); got {tuple(y.shape)}"
            )
        for key, t in ((f"{split}_input", x), (f"{split}_label", y)):
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                raise ValueError(f"`dataset['{key}']` contains NaN or infinite values")
        if not y.is_floating_point() and not bool(((y >= 0) & (y < n_out)).all()):
            raise ValueError(f"`dataset['{split}_label']` class labels must be in [0, {n_out}); got {int(y.min())}..{int(y.max())}")
    if out["train_label"].is_floating_point() != out["test_label"].is_floating_point():
        raise ValueError("`dataset` train and test labels must both be float (regression) or both integer (classification)")
    return out


@torch.no_grad()
def metrics(model: nn.Module, data: dict, loss_fn, classify: bool) -> dict:
    """{train,test}_loss and {train,test}_rmse (regression) or _acc (classification)."""
    row = {}
    for split in ("train", "test"):
        pred, y = model(data[f"{split}_input"]), data[f"{split}_label"]
        row[f"{split}_loss"] = float(loss_fn(pred, y))
        if classify:
            row[f"{split}_acc"] = float((pred.argmax(-1) == y).double().mean())
        else:
            row[f"{split}_rmse"] = float(torch.sqrt(((pred - y) ** 2).mean()))
    return row


def _non_finite(model: nn.Module) -> str | None:
    """Name of the first parameter holding NaN or infinity, else None."""
    for name, p in model.named_parameters():
        if not bool(torch.isfinite(p).all()):
            return name
    return None


def _step(opt: torch.optim.Optimizer, closure, params: list[nn.Parameter], start: list[torch.Tensor]) -> float:
    """One optimizer step; the objective at its start, NaN when the step moved the parameters
    where the model cannot be evaluated (its forward raised FloatingPointError or ValueError)."""
    try:
        if isinstance(opt, torch.optim.LBFGS):
            return float(opt.step(closure).detach())
        value = closure()
        opt.step()
        return float(value.detach())
    except (FloatingPointError, ValueError):
        if all(torch.equal(p, s) for p, s in zip(params, start)):
            raise  # not caused by the step: the model fails at the parameters it started from
        return math.nan


def _lowered(closure, before: float) -> bool:
    """Whether the objective is now finite and not above `before` (one extra evaluation)."""
    try:
        after = float(closure().detach())
    except (FloatingPointError, ValueError):  # the model cannot be evaluated at the new parameters
        return False
    return math.isfinite(after) and after <= before


def _rescale_lbfgs(opt: torch.optim.LBFGS, factor: float) -> None:
    """Continue `opt` on its objective multiplied by `factor`, with the same iterates.

    torch's LBFGS keeps a curvature pair only when y.s > 1e-10, an absolute threshold: once the
    loss is small (MSE 1e-6), every new pair is dropped and LBFGS stalls on its stale history.
    fit therefore hands LBFGS the objective divided by a reference loss; when the loss has
    fallen far below the reference, the stored gradient differences, their inverse products,
    the initial Hessian scale and the last gradient and loss are rescaled with it, which is
    exactly LBFGS on the rescaled objective from the start.
    """
    state = opt.state[opt.param_groups[0]["params"][0]]  # LBFGS keeps one global state there
    if "old_dirs" not in state:
        return
    state["old_dirs"] = [y * factor for y in state["old_dirs"]]
    state["ro"] = [r / factor for r in state["ro"]]
    state["H_diag"] = state["H_diag"] / factor
    state["prev_flat_grad"] = state["prev_flat_grad"] * factor
    state["prev_loss"] = state["prev_loss"] * factor


def _restore(params: list[nn.Parameter], saved: list[torch.Tensor]) -> None:
    with torch.no_grad():
        for p, good in zip(params, saved):
            p.copy_(good)


def _record(history: dict, step: int, record: dict, row: dict) -> None:
    """Add the metrics `row` to the step's `record` and append both to `history`."""
    record.update(row)
    history["step"].append(step)
    for key in history:
        if key != "step":
            history[key].append(record[key])


def _check_callables(loss, scheduler, callbacks) -> list:
    """TypeError naming the argument for a loss, scheduler or callback that is not callable; the callbacks as a list."""
    if loss is not None and not callable(loss):
        raise TypeError(f"`loss` must be a callable (prediction, label) -> scalar or None; got {loss!r}")
    if scheduler is not None and not callable(scheduler):
        raise TypeError(f"`scheduler` must be a callable optimizer -> LR scheduler or None; got {scheduler!r}")
    callbacks = list(callbacks or [])
    for k, cb in enumerate(callbacks):
        if not callable(cb):
            raise TypeError(f"`callbacks[{k}]` must be a callable (step, model, record) -> bool | None; got {cb!r}")
    return callbacks


def _batches(x: torch.Tensor, y: torch.Tensor, batch: int | None, seed: int | None):
    """Endless (x, y) minibatches: the whole set when `batch` is None or >= N, else `batch` rows drawn
    without replacement per step from a generator seeded with `seed` (torch's global one for None)."""
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    n = x.shape[0]
    while True:
        if batch is None or batch >= n:
            yield x, y
        else:
            idx = torch.randperm(n, generator=gen)[:batch].to(x.device)
            yield x[idx], y[idx]


class _Objective:
    """The training objective loss(model(x), y) + reg * regularization on a batch."""

    def __init__(self, model: nn.Module, loss_fn, reg: float, reg_options: dict | None) -> None:
        self.model, self.loss_fn, self.reg, self.reg_options = model, loss_fn, reg, reg_options or {}
        self.regularization = None
        if reg > 0:
            from qkan.interpret import regularization

            self.regularization = regularization

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        value = self.loss_fn(self.model(x), y)
        if self.regularization is not None:
            value = value + self.reg * self.regularization(self.model, x, **self.reg_options)
        return value


class _Stage:
    """One optimizer stage: its optimizer and scheduler, the LBFGS guard, the loss scale and the rollback.

    The guard (stage "lbfgs" only): a step that does not lower the objective is undone and the
    stage continues with "lbfgs-wolfe". The scale: an LBFGS sees the objective times `scale`,
    raised whenever the scaled objective falls below RESCALE_BELOW (_rescale_lbfgs). The
    rollback: a step after which the loss or a parameter is not finite is undone and raises.
    """

    def __init__(self, params: list[nn.Parameter], optimizer, lr: float | None, scheduler) -> None:
        self.params, self.scheduler_factory = params, scheduler
        self.guarded = isinstance(optimizer, str) and optimizer.lower() == "lbfgs"
        self._use(make_optimizer(params, optimizer, lr))
        self.scale = 1.0

    def _use(self, opt: torch.optim.Optimizer) -> None:
        self.opt = opt
        self.scheduler = self.scheduler_factory(opt) if self.scheduler_factory is not None else None

    def step(self, objective: _Objective, x: torch.Tensor, y: torch.Tensor, model: nn.Module, step: int) -> float:
        """One step on the batch (x, y); returns the objective at its start (unscaled)."""

        def closure():
            self.opt.zero_grad()
            value = objective(x, y) * self.scale
            value.backward()
            return value

        last_good = [p.detach().clone() for p in self.params]
        value = _step(self.opt, closure, self.params, last_good)
        if self.guarded and not _lowered(closure, value):  # roll back; line search from here on
            _restore(self.params, last_good)
            self.guarded = False
            self._use(make_optimizer(self.params, "lbfgs-wolfe", None))
            value = _step(self.opt, closure, self.params, last_good)
        value, scaled = value / self.scale, value
        if isinstance(self.opt, torch.optim.LBFGS) and 0 < scaled < RESCALE_BELOW:
            _rescale_lbfgs(self.opt, 1 / scaled)
            self.scale /= scaled
        bad = "the training loss" if not math.isfinite(value) else _non_finite(model)
        if bad:
            _restore(self.params, last_good)
            raise FloatingPointError(
                f"step {step}: {bad} became NaN or infinite (loss {value:.4g}); the model keeps the parameters "
                f"from before step {step}. Try a smaller `lr` or optimizer='lbfgs-wolfe'"
            )
        if self.scheduler is not None:
            plateau = isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
            self.scheduler.step(value) if plateau else self.scheduler.step()
        return value


def fit(
    model: nn.Module,
    dataset: dict,
    steps: int | None = None,
    optimizer="lbfgs",
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
    """Train `model` (a QKAN) on a pykan-style dataset dict: the body of ``QKAN.fit``.

    Stages: the arguments are checked; each optimizer stage (_stages) runs its steps through a
    _Stage (guard, loss scale, rollback, scheduler) on minibatches (_batches); metrics are
    recorded every `log` steps; callbacks may stop the run after any step.
    """
    reject_foreign("fit", foreign)
    check_int("log", log)
    check_int("batch", batch, allow_none=True)
    check_int("seed", seed, low=0, high=2**63 - 1, allow_none=True)
    check_type("reg_options", reg_options, dict, allow_none=True)
    check_bool("progress", progress)
    reg = check_number("reg", reg)
    check_number("lr", lr, low=0.0, allow_none=True)
    callbacks = _check_callables(loss, scheduler, callbacks)
    stages = _stages(optimizer, steps, lr)
    total = sum(s[1] for s in stages)
    p0 = next(model.parameters())
    data = prepare_dataset(dataset, model.width, {"device": p0.device, "dtype": p0.dtype})
    classify = not data["train_label"].is_floating_point()
    loss_fn = loss if loss is not None else (F.cross_entropy if classify else F.mse_loss)
    objective = _Objective(model, loss_fn, reg, reg_options)
    params = [p for p in model.parameters() if p.requires_grad]
    model.reference_input = data["train_input"][:1024].detach().clone()
    batches = _batches(data["train_input"], data["train_label"], batch, seed)
    metric = "acc" if classify else "rmse"
    history = {"step": [], "loss": [], "train_loss": [], "test_loss": [], f"train_{metric}": [], f"test_{metric}": []}

    with progress_bar(None, progress, total=total, desc="fit", dynamic_ncols=True) as bar:
        step = 0
        for stage_opt, stage_steps, stage_lr in stages:
            stage = _Stage(params, stage_opt, stage_lr, scheduler)
            for _ in range(stage_steps):
                step += 1
                record = {"loss": stage.step(objective, *next(batches), model, step)}
                if step % log == 0 or step == total:
                    _record(history, step, record, metrics(model, data, loss_fn, classify))
                    bar.set_postfix({k: f"{v:.3g}" for k, v in record.items() if k.endswith(metric)})
                bar.update()
                if any([bool(cb(step, model, record)) for cb in callbacks]):  # every callback sees every step
                    if history["step"][-1:] != [step]:  # the last step is always in the history
                        _record(history, step, record, metrics(model, data, loss_fn, classify))
                    return history
    return history

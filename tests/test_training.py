"""qkan.training (QKAN.fit): optimizer stages, scheduler hook, callbacks, dataset checks, rollback
on non-finite steps, theta_init, and the errors for pykan / qkan 0.2.3 keyword arguments."""

import math

import pytest
import torch

from qkan import QKAN, QKANLayer
from qkan._foreign import FOREIGN_NAMES
from qkan.data import function_dataset

F64 = torch.float64


def _data(n=40, dtype=F64):
    return function_dataset(lambda x: torch.sin(2 * x[:, 0]) * x[:, 1], n_var=2, train_num=n, test_num=n, seed=1, dtype=dtype)


def _model(**kw):
    return QKAN([2, 2, 1], reps=1, seed=0, dtype=F64, **kw)


def _snapshot(model):
    return [p.detach().clone() for p in model.parameters()]


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


# ----------------------------------------------------------------------------------- stages
def test_stage_list_runs_in_order_with_its_steps_and_lrs():
    model, seen = _model(), {}

    def remember(step, m, record):
        seen[step] = _snapshot(m)

    start = _snapshot(model)
    history = model.fit(_data(), optimizer=[(torch.optim.SGD, 2, 0.0), ("adam", 3, 0.05)], callbacks=[remember],
                        progress=False)
    assert history["step"] == [1, 2, 3, 4, 5]
    assert _same(seen[2], start)  # SGD with lr 0 left the parameters alone for 2 steps
    assert not _same(seen[3], start)  # then Adam moved them


def test_adam_then_lbfgs_improves_and_counts_steps():
    model = _model()
    history = model.fit(_data(), steps=6, optimizer="adam+lbfgs", progress=False)
    assert history["step"] == list(range(1, 7))
    assert history["test_rmse"][-1] < history["test_rmse"][0]


def test_stage_list_errors():
    model, data = _model(), _data()
    with pytest.raises(ValueError, match=r"`steps` must be None or the stages' total \(5\)"):
        model.fit(data, steps=3, optimizer=[("adam", 2), ("lbfgs", 3)], progress=False)
    with pytest.raises(ValueError, match=r"`lr` must be None with a stage list"):
        model.fit(data, optimizer=[("adam", 2)], lr=0.1, progress=False)
    with pytest.raises(TypeError, match=r"`optimizer\[0\]` must be a pair"):
        model.fit(data, optimizer=["adam"], progress=False)
    with pytest.raises(ValueError, match=r"`optimizer` must be a non-empty stage list"):
        model.fit(data, optimizer=[], progress=False)


def test_named_optimizers_build_the_documented_torch_optimizers():
    from qkan.training import make_optimizer

    params = list(_model().parameters())
    plain = make_optimizer(params, "lbfgs", None)
    wolfe = make_optimizer(params, "lbfgs-wolfe", None)
    adam = make_optimizer(params, "ADAM", 0.3)
    assert isinstance(plain, torch.optim.LBFGS) and isinstance(wolfe, torch.optim.LBFGS)
    assert (plain.defaults["lr"], plain.defaults["history_size"], plain.defaults["line_search_fn"]) == (0.5, 100, None)
    assert (wolfe.defaults["lr"], wolfe.defaults["history_size"], wolfe.defaults["line_search_fn"]) == (1.0, 10, "strong_wolfe")
    assert isinstance(adam, torch.optim.Adam) and adam.defaults["lr"] == 0.3


def test_default_lbfgs_falls_back_to_the_line_search_after_a_bad_step(monkeypatch):
    import qkan.training as training

    built = []
    real = training.make_optimizer
    monkeypatch.setattr(training, "make_optimizer", lambda params, name, lr: built.append(name) or real(params, name, lr))
    data = _data()
    model = _model()
    with torch.no_grad():
        start = float(((model(data["train_input"]) - data["train_label"]) ** 2).mean())
    history = model.fit(data, optimizer=[("lbfgs", 3, 50.0)], progress=False)  # lr 50 overshoots at once
    assert built == ["lbfgs", "lbfgs-wolfe"]
    assert history["train_rmse"][-1] ** 2 < start
    assert all(math.isfinite(v) for v in history["loss"])
    built.clear()
    _model().fit(data, steps=3, optimizer="adam", progress=False)  # only "lbfgs" is guarded
    assert built == ["adam"]


def _quadratic(scale):
    """A float64 least-squares problem and its objective times `scale`."""
    gen = torch.Generator().manual_seed(3)
    a, b = torch.randn(30, 8, generator=gen, dtype=F64), torch.randn(30, generator=gen, dtype=F64)
    return lambda x: scale * ((a @ x - b) ** 2).mean()


def _lbfgs_run(x, objective, opt, steps):
    def closure():
        opt.zero_grad()
        value = objective(x)
        value.backward()
        return value

    for _ in range(steps):
        opt.step(closure)


def test_rescaled_lbfgs_takes_the_same_steps_as_lbfgs_on_the_rescaled_objective():
    from qkan.training import _rescale_lbfgs

    lbfgs = dict(lr=0.5, history_size=100, max_iter=3, tolerance_grad=1e-32, tolerance_change=1e-32)
    x_ref, x = (torch.zeros(8, dtype=F64, requires_grad=True) for _ in range(2))
    ref, opt = torch.optim.LBFGS([x_ref], **lbfgs), torch.optim.LBFGS([x], **lbfgs)
    for point, optimizer in ((x_ref, ref), (x, opt)):
        _lbfgs_run(point, _quadratic(1.0), optimizer, 2)  # the same two steps, history filled
    _lbfgs_run(x_ref, _quadratic(1.0), ref, 2)  # the reference goes on with the objective as it was
    _rescale_lbfgs(opt, 1e3)
    _lbfgs_run(x, _quadratic(1e3), opt, 2)  # ours goes on with the objective times 1e3
    assert not torch.equal(x, torch.zeros(8, dtype=F64))
    torch.testing.assert_close(x, x_ref, rtol=1e-12, atol=1e-14)
    _rescale_lbfgs(torch.optim.LBFGS([x]), 2.0)  # no state yet: nothing to rescale, no error


def test_fit_keeps_lbfgs_learning_below_torchs_curvature_threshold(monkeypatch):
    """torch's LBFGS drops curvature pairs with y.s <= 1e-10: on a loss that starts at 1e-8
    (a target 1e-3 of the way from the initial model to a teacher of the same shape) it stays
    at gradient steps unless fit rescales the objective."""
    import qkan.training as training

    teacher, start = QKAN([2, 2, 1], reps=2, seed=5, dtype=F64), QKAN([2, 2, 1], reps=2, seed=0, dtype=F64)
    target = lambda x: (start(x) + 1e-3 * (teacher(x) - start(x))).detach()  # noqa: E731
    data = function_dataset(target, n_var=2, train_num=60, test_num=60, seed=1, dtype=F64)
    final = {}
    for below in (0.0, training.RESCALE_BELOW):  # 0: never rescale
        monkeypatch.setattr(training, "RESCALE_BELOW", below)
        history = QKAN([2, 2, 1], reps=2, seed=0, dtype=F64).fit(data, steps=20, progress=False)
        final[below] = history["train_loss"][-1]
        # the recorded loss is the unscaled objective at the start of each step
        torch.testing.assert_close(history["loss"][1:], history["train_loss"][:-1], rtol=1e-9, atol=0)
    assert final[training.RESCALE_BELOW] < final[0.0] / 30  # measured: 4.4e-12 vs 9.9e-10


# ------------------------------------------------------------------------- scheduler, callbacks
def test_scheduler_is_built_per_stage_and_stepped_every_step():
    made = []

    def scheduler(opt):
        made.append(opt)
        return torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)

    _model().fit(_data(), optimizer=[("adam", 3, 0.08), ("adam", 2, 0.04)], scheduler=scheduler, progress=False)
    assert len(made) == 2
    assert made[0].param_groups[0]["lr"] == pytest.approx(0.08 * 0.5**3)
    assert made[1].param_groups[0]["lr"] == pytest.approx(0.04 * 0.5**2)


def test_reduce_on_plateau_gets_the_loss():
    made = []

    def scheduler(opt):
        made.append(torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0, factor=0.1))
        return made[-1]

    _model().fit(_data(), steps=4, optimizer="adam", lr=1e-12, scheduler=scheduler, progress=False)
    assert made[0].best < math.inf  # it saw the step losses


def test_callbacks_see_every_step_and_can_stop():
    records = []

    def watch(step, model, record):
        records.append((step, dict(record)))
        return step == 4

    history = _model().fit(_data(), steps=10, optimizer="adam", log=3, callbacks=[watch], progress=False)
    assert [s for s, _ in records] == [1, 2, 3, 4]
    assert "test_rmse" in records[2][1] and "test_rmse" not in records[1][1] and "loss" in records[1][1]
    assert history["step"] == [3, 4]  # logged step 3, and the step it stopped at


def test_callbacks_and_scheduler_must_be_callable():
    with pytest.raises(TypeError, match=r"`callbacks\[0\]` must be a callable"):
        _model().fit(_data(), callbacks=[3], progress=False)
    with pytest.raises(TypeError, match=r"`scheduler` must be a callable"):
        _model().fit(_data(), scheduler="step", progress=False)


# ------------------------------------------------------------------------------- dataset checks
@pytest.mark.parametrize(
    "key, value, error, match",
    [
        ("test_input", "nan", ValueError, r"`dataset\['test_input'\]` contains NaN or infinite values"),
        ("test_label", "inf", ValueError, r"`dataset\['test_label'\]` contains NaN or infinite values"),
        ("train_input", "empty", ValueError, r"`dataset\['train_input'\]` is empty"),
        ("train_label", "bool", TypeError, r"`dataset\['train_label'\]` must hold float .* or integer class labels"),
        ("train_input", "int", TypeError, r"`dataset\['train_input'\]` must be a floating-point tensor"),
        ("train_label", "list", TypeError, r"`dataset\['train_label'\]` must be torch.Tensor"),
    ],
)
def test_bad_dataset_refused_before_any_step(key, value, error, match):
    data, model = _data(), _model()
    if value in ("nan", "inf"):
        data[key][0, 0] = float(value)
    elif value == "empty":
        data["train_input"], data["train_label"] = data["train_input"][:0], data["train_label"][:0]
    elif value == "bool":
        data[key] = data[key] > 0
    elif value == "int":
        data[key] = data[key].long()
    else:
        data[key] = data[key].tolist()
    before = _snapshot(model)
    with pytest.raises(error, match=match):
        model.fit(data, optimizer="adam", progress=False)
    assert _same(before, model.parameters())


def test_class_labels_out_of_range_and_mixed_labels():
    data = _data()
    data["train_label"] = torch.zeros(40, dtype=torch.long)
    data["test_label"] = torch.full((40,), 2)
    model = QKAN([2, 2], reps=1, seed=0, dtype=F64)
    with pytest.raises(ValueError, match=r"`dataset\['test_label'\]` class labels must be in \[0, 2\); got 2..2"):
        model.fit(data, progress=False)
    data["test_label"] = torch.zeros(40, 2, dtype=F64)
    with pytest.raises(ValueError, match=r"train and test labels must both be float .* or both integer"):
        model.fit(data, progress=False)
    with pytest.raises(TypeError, match=r"`dataset` must be a dict"):
        model.fit([1, 2], progress=False)


# ------------------------------------------------------------------------------------ rollback
def test_nan_loss_rolls_back_to_the_last_good_step():
    calls, seen = [], {}

    def loss(pred, y):
        calls.append(1)
        value = ((pred - y) ** 2).mean()
        return value * float("nan") if len(calls) == 3 else value

    model = _model()
    with pytest.raises(FloatingPointError, match=r"step 3: the training loss became NaN or infinite .* from before step 3"):
        model.fit(_data(), steps=5, optimizer="adam", loss=loss, log=100,
                  callbacks=[lambda s, m, r: seen.__setitem__(s, _snapshot(m))], progress=False)
    assert _same(seen[2], model.parameters())
    assert all(torch.isfinite(p).all() for p in model.parameters())


class _Poison(torch.optim.SGD):
    """SGD that writes infinity into its first parameter on its second step."""

    def step(self, closure=None):
        self.calls = getattr(self, "calls", 0) + 1
        super().step(closure)
        if self.calls == 2:
            with torch.no_grad():
                self.param_groups[0]["params"][0][0] = float("inf")


def test_non_finite_parameter_rolls_back_and_names_the_tensor():
    model, seen = _model(), {}
    with pytest.raises(FloatingPointError, match=r"step 2: layers.0.theta became NaN or infinite"):
        model.fit(_data(), steps=4, optimizer=_Poison(model.parameters(), lr=0.01),
                  callbacks=[lambda s, m, r: seen.__setitem__(s, _snapshot(m))], progress=False)
    assert _same(seen[1], model.parameters())


# ---------------------------------------------------------------------------------- theta_init
@pytest.mark.parametrize("init, std", [("xavier", 1 / math.sqrt(5 * (40 + 30))), ("normal", 1 / math.sqrt(4)),
                                       ("uniform", math.pi / math.sqrt(3))])
def test_theta_init_spreads(init, std):
    layer = QKANLayer(30, 40, reps=4, seed=1, theta_init=init, dtype=F64)  # theta (40, 30, 5, 2)
    theta = layer.theta.detach()
    assert abs(float(theta.std()) / std - 1) < 0.03
    assert abs(float(theta.mean())) < 0.05 * std
    if init == "uniform":
        assert float(theta.abs().max()) <= math.pi
    again = QKANLayer(30, 40, reps=4, seed=1, theta_init=init, dtype=F64)
    assert torch.equal(again.theta, layer.theta)


def test_theta_init_is_a_setting_and_checked():
    model = QKAN([2, 3, 1], reps=2, seed=0, theta_init="normal")
    assert model.layers[1].settings()["theta_init"] == "normal"
    assert QKAN(**model.config()).layers[0].theta_init == "normal"
    assert model.extend(3).layers[0].theta_init == "normal"
    with pytest.raises(ValueError, match=r"`theta_init` must be one of \['xavier', 'normal', 'uniform'\]"):
        QKANLayer(2, 1, theta_init="kaiming")


def test_base_init_constant_or_uniform():
    layer = QKANLayer(30, 40, reps=2, seed=1, dtype=F64)  # default: uniform in [-1, 1] / sqrt(30)
    beta = layer.base_weight.detach()
    assert float(beta.abs().max()) <= 1 / math.sqrt(30)
    assert abs(float(beta.std()) * math.sqrt(3 * 30) - 1) < 0.05
    model = QKAN([2, 3, 1], reps=2, seed=0, base_init=0.5)  # the published package's constant
    assert all(torch.equal(m.base_weight, torch.full_like(m.base_weight, 0.5)) for m in model.layers)
    torch.testing.assert_close(model.layers[0].theta, QKAN([2, 3, 1], reps=2, seed=0).layers[0].theta)
    assert QKAN(**model.config()).layers[1].base_init == 0.5
    bigger = model.extend(3)
    assert bigger.layers[0].base_init == 0.5
    torch.testing.assert_close(bigger.layers[0].base_weight, model.layers[0].base_weight)
    with pytest.raises(ValueError, match=r"`base_init` must be one of \['uniform'\]"):
        QKANLayer(2, 1, base_init="zeros")
    with pytest.raises(TypeError, match="`base_init` must be a number"):
        QKANLayer(2, 1, base_init=True)
    with pytest.raises(ValueError, match="`base_init` must be a finite number"):
        QKANLayer(2, 1, base_init=float("nan"))


# -------------------------------------------------------------------------- foreign arguments
@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: QKANLayer(2, 1, preact_trainable=True), r"QKANLayer got the pykan / qkan 0.2.3 argument `preact_trainable`; here use encoding=\"edge\""),
        (lambda: QKAN([2, 1], fast_measure=True), r"QKAN got .* `fast_measure`; here use measure=\"amplitude\""),
        (lambda: QKAN([2, 1], grid=5, k=3), r"`grid`; here use reps="),
        (lambda: QKAN([2, 1], solver="exact"), r"`solver`; here use evaluator="),
        (lambda: _model().fit(_data(), lamb=0.01, progress=False), r"fit got .* `lamb`; here use reg="),
        (lambda: _model().fit(_data(), opt="LBFGS", progress=False), r"`opt`; here use optimizer="),
        (lambda: _model().fit(_data(), verbose=False, progress=False), r"`verbose`; here use progress="),
        (lambda: QKANLayer(2, 1, colour="red"), r"QKANLayer got an unexpected keyword argument `colour`"),
        (lambda: _model().fit(_data(), speed=2), r"fit got an unexpected keyword argument `speed`"),
    ],
)
def test_foreign_keywords_name_our_equivalent(make, match):
    with pytest.raises(TypeError, match=match):
        make()


def test_foreign_table_names_the_migration_pairs():
    for theirs, ours in [("train_", "fit"), ("refine", "extend"), ("create_dataset", "function_dataset"),
                         ("preact_trainable", "encoding"), ("fast_measure", "amplitude")]:
        assert ours in FOREIGN_NAMES[theirs]

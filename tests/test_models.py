"""QKAN model: fit, extension (against the reference statevector), config, save/load."""

import math

import numpy as np
import pytest
import torch

from qkan import QKAN
from qkan.data import function_dataset
from qkan.testing import reference_layer

F64 = torch.float64


def _product_data(n=200, dtype=F64):
    return function_dataset(lambda x: torch.sin(2 * x[:, 0]) * x[:, 1], n_var=2, train_num=n, test_num=n, seed=1, dtype=dtype)


def _randomise(model):
    """Non-default encodings and post-activation biases so extension is tested off the init."""
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for layer in model.layers:
            if layer.enc_weight is not None:
                layer.enc_weight.copy_(torch.rand(layer.enc_weight.shape, generator=gen, dtype=F64) - 0.5)
                layer.enc_bias.copy_(torch.rand(layer.enc_bias.shape, generator=gen, dtype=F64) * 0.6 - 0.3)
            layer.post_bias.copy_(torch.randn(layer.post_bias.shape, generator=gen, dtype=F64))
            layer.mask[0, -1] = 0.0
    return model


# ------------------------------------------------------------------------------------------ fit
def test_fit_lbfgs_reduces_error_below_threshold():
    data = _product_data()
    model = QKAN([2, 3, 1], reps=2, seed=0, dtype=F64)
    history = model.fit(data, steps=15, progress=False)
    assert len(history["train_rmse"]) == len(history["test_rmse"]) == 15
    assert history["step"] == list(range(1, 16))
    assert history["test_rmse"][-1] < 0.02 < history["test_rmse"][0]
    torch.testing.assert_close(model.reference_input, data["train_input"][:1024])


def test_fit_adam_minibatch_log_and_custom_loss():
    data = _product_data()
    model = QKAN([2, 2, 1], reps=1, seed=0, dtype=F64)
    with torch.no_grad():
        start = float(torch.sqrt(((model(data["test_input"]) - data["test_label"]) ** 2).mean()))
    calls = []

    def l1(pred, y):
        calls.append(pred.shape[0])
        return (pred - y).abs().mean()

    history = model.fit(data, steps=40, optimizer="adam", lr=0.05, batch=32, loss=l1, log=10, progress=False)
    assert history["step"] == [10, 20, 30, 40]
    assert 32 in calls  # minibatches were drawn
    assert history["test_rmse"][-1] < 0.7 * start


def test_fit_accepts_optimizer_class_and_instance():
    data = _product_data(50)
    model = QKAN([2, 1], reps=1, seed=0, dtype=F64)
    h1 = model.fit(data, steps=3, optimizer=torch.optim.SGD, lr=0.1, progress=False)
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-2)
    h2 = model.fit(data, steps=3, optimizer=opt, progress=False)
    assert len(h1["loss"]) == len(h2["loss"]) == 3
    assert all(math.isfinite(v) for v in h1["loss"] + h2["loss"])


def test_fit_classification_reports_accuracy():
    from qkan.data import classification_dataset

    data = classification_dataset("moons", train_num=200, test_num=200, noise=0.05, seed=0, dtype=F64)
    model = QKAN([2, 3, 2], reps=2, seed=0, dtype=F64)
    history = model.fit(data, steps=10, progress=False)
    assert history["test_acc"][-1] > 0.95


def test_fit_moves_float32_data_to_model_dtype():
    data = _product_data(50, dtype=torch.float32)
    model = QKAN([2, 1], reps=1, seed=0, dtype=F64)
    history = model.fit(data, steps=2, progress=False)
    assert len(history["test_rmse"]) == 2


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(steps=0), ValueError, r"`steps` must be an int >= 1; got 0"),
        (dict(optimizer="sgdx"), ValueError, r"`optimizer` must be one of \['lbfgs', 'lbfgs-wolfe', 'adam', 'adam\+lbfgs'\]"),
        (dict(optimizer=3), TypeError, r"`optimizer` must be one of"),
        (dict(batch=0), ValueError, r"`batch` must be an int >= 1"),
        (dict(reg=-1.0), ValueError, r"`reg` must be a number >= 0"),
        (dict(loss="mse"), TypeError, r"`loss` must be a callable"),
        (dict(log=0), ValueError, r"`log` must be an int >= 1"),
    ],
)
def test_fit_argument_errors(kwargs, error, match):
    model = QKAN([2, 1], reps=1, seed=0, dtype=F64)
    with pytest.raises(error, match=match):
        model.fit(_product_data(20), progress=False, **kwargs)


def test_fit_lr_with_instance_and_dataset_errors():
    model = QKAN([2, 1], reps=1, seed=0, dtype=F64)
    data = _product_data(20)
    with pytest.raises(ValueError, match=r"`lr` must be None when `optimizer` is an Optimizer instance"):
        model.fit(data, optimizer=torch.optim.Adam(model.parameters()), lr=0.1, progress=False)
    with pytest.raises(ValueError, match=r"`dataset` must have the keys .* missing \['train_label', 'test_input', 'test_label'\]"):
        model.fit({"train_input": data["train_input"]}, progress=False)
    bad = dict(data, test_label=data["test_label"][:, 0])
    with pytest.raises(ValueError, match=r"`dataset\['test_label'\]` must have shape \(20, 1\)"):
        model.fit(bad, progress=False)
    bad = dict(data, train_input=data["train_input"][:, :1])
    with pytest.raises(ValueError, match=r"`dataset\['train_input'\]` must have shape \(N, 2\)"):
        model.fit(bad, progress=False)


def test_fit_nan_label_is_refused_before_any_step():
    data = _product_data(20)
    data["train_label"][3, 0] = float("nan")
    model = QKAN([2, 1], reps=1, seed=0, dtype=F64)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match=r"`dataset\['train_label'\]` contains NaN or infinite values"):
        model.fit(data, optimizer="adam", progress=False)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


# ------------------------------------------------------------------------------------ extension
EXTENDABLE = [
    ("pz", "fixed"), ("pz", "edge"), ("pz", "input"),
    ("rpz", "fixed"), ("rpz", "edge"), ("rpz", "input"),
    ("mix", "edge"), ("mix", "input"),
    ("real", "edge"), ("real", "input"),
]


@pytest.mark.parametrize("measure", ["z", "amplitude"])
@pytest.mark.parametrize("group", [None, "input"])
@pytest.mark.parametrize("ansatz, encoding", EXTENDABLE)
def test_extend_preserves_function(ansatz, encoding, group, measure):
    model = _randomise(QKAN([2, 3, 2], reps=2, ansatz=ansatz, encoding=encoding, group=group, measure=measure,
                            bias=True, seed=0, dtype=F64))
    x = torch.rand(16, 2, dtype=F64) * 1.6 - 0.8
    new = model.extend(5)
    assert new.reps == 5 and all(layer.reps == 5 for layer in new.layers)
    assert new.layers[0].theta.shape[-2] == model.layers[0].ansatz.n_slots(5)
    assert (new(x) - model(x)).abs().max().item() < 1e-12
    # edge by edge against the independent statevector reference
    h = x
    for old_layer, new_layer in zip(model.layers, new.layers):
        ref_old, ref_new = reference_layer(old_layer, h), reference_layer(new_layer, h)
        assert np.abs(ref_new - ref_old).max() < 1e-12
        torch.testing.assert_close(new_layer.mask, old_layer.mask, rtol=0, atol=0)
        h = old_layer(h)
    assert model.reps == 2  # the original is untouched


def test_extend_trains_further():
    data = _product_data()
    model = QKAN([2, 3, 1], reps=1, seed=0, dtype=F64)
    before = model.fit(data, steps=10, progress=False)["test_rmse"][-1]
    extended = model.extend(3)
    with torch.no_grad():
        same = torch.sqrt(((extended(data["test_input"]) - data["test_label"]) ** 2).mean()).item()
    assert abs(same - before) < 1e-12
    after = extended.fit(data, steps=10, progress=False)["test_rmse"][-1]
    assert after < 0.6 * before


def test_extend_refusals():
    with pytest.raises(ValueError, match="does not support ansatz 'px'"):
        QKAN([1, 1], reps=1, ansatz="px", encoding="edge").extend(2)
    for ansatz in ("mix", "real"):
        with pytest.raises(ValueError, match=f"needs a trainable encoding .* for ansatz '{ansatz}'"):
            QKAN([1, 1], reps=1, ansatz=ansatz).extend(2)
    with pytest.raises(ValueError, match=r"`reps` must be greater than the current reps \(2\); got 2"):
        QKAN([1, 1], reps=2).extend(2)
    with pytest.raises(TypeError, match=r"`reps` must be an int >= 1; got 2.5"):
        QKAN([1, 1], reps=2).extend(2.5)


# ------------------------------------------------------------------------------ config, save/load
def test_config_rebuilds_model():
    model = QKAN([2, 4, 3], reps=2, ansatz="rpz", encoding="input", base="tanh", bias=True, seed=5, dtype=F64)
    config = model.config()
    assert config["dtype"] == "float64" and config["width"] == [2, 4, 3]
    rebuilt = QKAN(**config)
    x = torch.rand(7, 2, dtype=F64)
    assert torch.equal(rebuilt(x), model(x))


def test_save_load_round_trip_is_bit_exact(tmp_path):
    model = _randomise(QKAN([2, 3, 1], reps=3, encoding="edge", group="input", seed=2, dtype=F64))
    model.fit(_product_data(50), steps=2, progress=False)
    path = tmp_path / "model.pt"
    model.save(path)
    loaded = QKAN.load(path)
    assert loaded.config() == model.config()
    for (k1, v1), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k1 == k2 and v1.dtype == v2.dtype and torch.equal(v1, v2)
    x = torch.rand(9, 2, dtype=F64)
    assert torch.equal(loaded(x), model(x))


def test_load_errors(tmp_path):
    missing = tmp_path / "missing.pt"
    with pytest.raises(ValueError, match="cannot load a QKAN from .*missing.pt.*no such file"):
        QKAN.load(missing)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="cannot load a QKAN from .*junk.pt"):
        QKAN.load(junk)
    good = tmp_path / "good.pt"
    QKAN([2, 1], reps=1).save(good)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match="cannot load a QKAN from .*truncated.pt"):
        QKAN.load(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(ValueError, match="foreign.pt.*not a qkan checkpoint"):
        QKAN.load(foreign)


def test_callable_base_has_no_config():
    with pytest.raises(ValueError, match="custom callable `base`"):
        QKAN([1, 1], reps=1, base=torch.sin).config()


def test_bad_dtype_name():
    with pytest.raises(ValueError, match=r"`dtype` must be a floating torch dtype or its name"):
        QKAN([1, 1], dtype="int32")


# ------------------------------------------------------------------------------------ delegates
def test_fit_with_regularization_adds_the_penalty():
    from qkan.interpret import regularization

    data = _product_data(50)
    model = QKAN([2, 3, 1], reps=1, seed=0, dtype=F64)
    x = data["train_input"]
    with torch.no_grad():
        mse = torch.nn.functional.mse_loss(model(x), data["train_label"]).item()
        penalty = regularization(model, x, l1=1.0, entropy=0.0).item()
    history = model.fit(data, steps=1, optimizer="adam", lr=1e-12, reg=0.5, reg_options={"l1": 1.0, "entropy": 0.0},
                        progress=False)
    assert history["loss"][0] == pytest.approx(mse + 0.5 * penalty, rel=1e-9)


def test_prune_plot_symbolic_delegate(tmp_path):
    model = QKAN([2, 3, 1], reps=1, seed=0, dtype=F64)
    with torch.no_grad():
        model.layers[1].post_weight[0, 2] = 0.0
        model.layers[1].base_weight[0, 2] = 0.0
    model.fit(_product_data(50), steps=1, optimizer="adam", lr=1e-12, progress=False)  # sets reference_input
    pruned = model.prune(node_th=1e-2, edge_th=0.0)  # only the dead hidden node goes
    assert pruned.width == [2, 2, 1]
    x = torch.rand(5, 2, dtype=F64)
    torch.testing.assert_close(pruned(x), model(x), rtol=0, atol=1e-10)
    model.plot(tmp_path / "net.png")
    assert (tmp_path / "net.png").stat().st_size > 1000
    formulas = model.symbolic()
    assert len(formulas) == 1
    x1, x2 = sorted(formulas[0].free_symbols, key=str)
    assert (str(x1), str(x2)) == ("x_1", "x_2")
    value = float(formulas[0].subs({x1: 0.3, x2: -0.2}))
    assert value == pytest.approx(model(torch.tensor([[0.3, -0.2]], dtype=F64)).item(), abs=1e-8)

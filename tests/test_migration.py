"""Moving a pykan or published-qkan (0.2.3) script over: every foreign name of a call in one error, naming ours."""

import re

import pytest
import torch

import qkan
from qkan import QKAN
from qkan._foreign import FOREIGN_IMPORTS, FOREIGN_METHODS, FOREIGN_NAMES
from qkan.data import function_dataset


def _data():
    return function_dataset(lambda x: torch.sin(x[:, :1]) + x[:, 1:], n_var=2, train_num=32, test_num=16, seed=0)


def test_published_constructor_lists_every_foreign_keyword_at_once():
    # the published README's quickstart call, plus a typo: one round trip names all six
    with pytest.raises(TypeError) as info:
        QKAN([1, 1], reps=3, device="cpu", seed=0, preact_trainable=True, postact_weight_trainable=True,
             postact_bias_trainable=True, ba_trainable=True, save_act=True, colour="red")  # fmt: skip
    message = str(info.value)
    assert message.startswith("QKAN got 6 keyword arguments it does not take:\n")
    for name in ("preact_trainable", "postact_weight_trainable", "postact_bias_trainable", "ba_trainable", "save_act"):
        assert f"- the pykan / qkan 0.2.3 argument `{name}`; here use {FOREIGN_NAMES[name]}\n" in message + "\n"
    assert message.endswith("- an unexpected keyword argument `colour`")
    assert 'encoding="edge"' in message and "always trainable" in message


def test_pykan_constructor_and_fit_keywords_in_one_error_each():
    with pytest.raises(TypeError, match=r"(?s)QKAN got 4 keyword.*`grid`; here use reps=.*`k`; here use reps=.*"
                                        r"`noise_scale`; here use theta_init=.*`base_fun`; here use base="):
        QKAN(width=[2, 5, 1], grid=5, k=3, seed=0, noise_scale=0.3, base_fun="silu")
    model = QKAN([2, 1], reps=1, seed=0)
    with pytest.raises(TypeError, match=r"(?s)fit got 3 keyword.*`opt`; here use optimizer=.*`lamb`; here use reg=.*"
                                        r"`lamb_entropy`; here use reg_options="):
        model.fit(_data(), opt="LBFGS", steps=2, lamb=0.01, lamb_entropy=2.0)
    # our own keywords pass through QKAN to the layers untouched
    assert QKAN([2, 1], reps=1, ansatz="rpz", encoding="edge", base_init=0.5, seed=0).layers[0].encoding == "edge"


def test_one_foreign_keyword_keeps_the_one_line_form():
    with pytest.raises(TypeError, match=r"^QKAN got the pykan / qkan 0\.2\.3 argument `solver`; here use evaluator="):
        QKAN([2, 1], solver="exact")
    with pytest.raises(TypeError, match=r"^QKAN got an unexpected keyword argument `colour`$"):
        QKAN([2, 1], colour="red")


@pytest.mark.parametrize("name, ours", [
    ("train_", "model.fit(dataset"), ("refine", "model.extend(reps)"), ("layer_extension", "model.extend(reps)"),
    ("symbolic_formula", "model.symbolic()"), ("saveckpt", "model.save(path)"), ("fix_symbolic", "model.auto_symbolic("),
    ("loadckpt", "QKAN.load(path)"), ("attribute", "qkan.attribution(model, x)"),
])  # fmt: skip
def test_foreign_methods_name_ours(name, ours):
    model = QKAN([2, 1], reps=1, seed=0)
    with pytest.raises(AttributeError, match=rf"^'QKAN' has no method `{name}` \(a pykan / qkan 0\.2\.3 name\); here use {re.escape(ours)}"):
        getattr(model, name)
    assert not hasattr(model, name)


def test_every_named_equivalent_exists():
    # the table points to names that are really there
    model = QKAN([2, 1], reps=1, seed=0)
    for text in list(FOREIGN_METHODS.values()) + list(FOREIGN_IMPORTS.values()):
        for ref in re.findall(r"\b(model|qkan|QKAN|qkan\.data)\.([A-Za-z_]+)", text):
            owner = {"model": model, "qkan": qkan, "QKAN": QKAN}.get(ref[0], qkan.data)
            assert hasattr(owner, ref[1]), f"{text!r} names {'.'.join(ref)}, which does not exist"


def test_other_missing_attributes_keep_torch_behaviour():
    model = QKAN([2, 1], reps=1, seed=0)
    with pytest.raises(AttributeError, match=r"^'QKAN' object has no attribute 'nothing'$"):
        model.nothing
    assert isinstance(model.layers, torch.nn.ModuleList)  # submodules still resolve through nn.Module
    assert hasattr(model, "fit") and not hasattr(model, "nothing")


@pytest.mark.parametrize("name, ours", [
    ("create_dataset", "qkan.data.function_dataset"), ("KAN", "qkan.QKAN(width, reps=...)"),
    ("get_feynman_dataset", 'qkan.data.feynman(name, source="published")'), ("MultKAN", "qkan.QKAN"),
])  # fmt: skip
def test_foreign_imports_name_ours(name, ours):
    with pytest.raises(ImportError, match=rf"^`qkan\.{name}` is a pykan / qkan 0\.2\.3 name; here use {re.escape(ours)}"):
        exec(f"from qkan import {name}", {})
    with pytest.raises(ImportError, match=rf"`qkan\.{name}`"):
        getattr(qkan, name)


def test_unknown_module_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match=r"^module 'qkan' has no attribute 'nothing'$"):
        qkan.nothing
    assert not hasattr(qkan, "nothing")
    with pytest.raises(ImportError, match="cannot import name 'nothing'"):
        exec("from qkan import nothing", {})


def test_plot_from_acts_names_ours_not_an_internal_function():
    model = QKAN([2, 1], reps=1, seed=0)
    with pytest.raises(TypeError, match=r"(?s)^QKAN\.plot got 2 keyword.*`from_acts`; here use model\.plot\(path, x=.*`beta`"):
        model.plot(from_acts=True, beta=3)
    with pytest.raises(TypeError, match=r"^QKAN\.plot got an unexpected keyword argument `colour`$"):
        model.plot(colour="red")

"""Qiskit evaluator and circuit converter.

Exact paths are checked in float64 against the closed form / SU(2) evaluators and the
independent numpy reference (qkan.testing); shot paths against several-sigma bounds with
sigma = sqrt((1 - f^2) / S) and fixed seeds. Aer runs single-threaded.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

pytest.importorskip("qiskit_aer")

from qiskit.primitives import BaseEstimatorV2  # noqa: E402
from qiskit.quantum_info import SparsePauliOp, Statevector  # noqa: E402
from qiskit_aer import AerSimulator  # noqa: E402
from qiskit_aer.primitives import EstimatorV2 as AerEstimatorV2  # noqa: E402
from qiskit_ibm_runtime import EstimatorV2 as RuntimeEstimatorV2  # noqa: E402
from qiskit_ibm_runtime.fake_provider import FakeManilaV2  # noqa: E402

from qkan import QKAN, QKANLayer  # noqa: E402
from qkan.circuits.ansatz import ANSATZE  # noqa: E402
from qkan.simulators.qiskit import QiskitEvaluator, QiskitJobError  # noqa: E402
from qkan.testing import assert_matches_reference, random_layer, reference_edge  # noqa: E402

ALL_ANSATZE = sorted(ANSATZE)
EXACT = {"threads": 1}


def _inputs(n: int, dim: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, dim, generator=gen, dtype=torch.float64) * 1.2 - 0.6


# ------------------------------------------------------------------------------ circuits
@pytest.mark.parametrize("ansatz", ALL_ANSATZE)
def test_edge_circuit_matches_reference_statevector(ansatz):
    layer = random_layer(ansatz=ansatz, encoding="edge", in_dim=3)
    w, b = (p.detach() for p in layer.encoding_parameters())
    for j, i in [(0, 0), (1, 2)]:
        circuit = layer.to_qiskit((j, i))
        (x,) = circuit.parameters
        assert x.name == "x" and circuit.num_qubits == 1
        for value in (-0.5, 0.1, 0.55):
            got = Statevector(circuit.assign_parameters({x: value})).expectation_value(SparsePauliOp("Z")).real
            ref = reference_edge(ansatz, layer.theta[j, i].detach().numpy(), (w[j, i] * value + b[j, i]).numpy())
            assert abs(got - ref) < 1e-12


@pytest.mark.parametrize("ansatz", ALL_ANSATZE)
def test_ansatz_circuit_parameters(ansatz):
    layer = random_layer(ansatz=ansatz, reps=3, in_dim=3)
    circuit = layer.to_qiskit()
    names = [p.name for p in circuit.parameters]
    n_theta = layer.ansatz.n_slots(3) * layer.ansatz.k
    assert sorted(names) == sorted([f"theta[{t}]" for t in range(n_theta)] + [f"phi[{l}]" for l in range(3)])
    assert circuit.metadata == {"ansatz": ansatz, "reps": 3}


def test_to_qiskit_rejects_bad_edge():
    with pytest.raises(ValueError, match=r"`edge` must be a pair \(j, i\) of ints with 0 <= j < 2 and 0 <= i < 3; got \(2, 0\)"):
        random_layer(in_dim=3).to_qiskit((2, 0))


# ------------------------------------------------------------------------------ exact path
@pytest.mark.parametrize("ansatz", ALL_ANSATZE)
@pytest.mark.parametrize("encoding,group", [("fixed", None), ("edge", None), ("input", "input")])
def test_exact_path_equals_closed_form(ansatz, encoding, group):
    layer = random_layer(ansatz=ansatz, encoding=encoding, group=group, bias=True, in_dim=3)
    x = _inputs(5, 3)
    ideal_f, ideal_y = layer.edge_outputs(x), layer(x)  # fourier where it exists, else su2
    layer.set_evaluator("qiskit", **EXACT)
    torch.testing.assert_close(layer.edge_outputs(x), ideal_f, rtol=0, atol=1e-10)
    torch.testing.assert_close(layer(x), ideal_y, rtol=0, atol=1e-10)
    assert_matches_reference(layer, x, atol=1e-10)
    assert layer.get_evaluator().jobs_submitted == 4  # one job per forward (two inside the helper)


def test_exact_path_with_statevector_estimator_and_leading_dims():
    from qiskit.primitives import StatevectorEstimator

    layer = random_layer(ansatz="mix", encoding="edge", in_dim=3)
    x = _inputs(6, 3).reshape(2, 3, 3)
    ideal = layer(x)
    layer.set_evaluator("qiskit", backend=StatevectorEstimator())
    y = layer(x)
    assert y.shape == (2, 3, 2) and y.dtype == torch.float64
    torch.testing.assert_close(y, ideal, rtol=0, atol=1e-10)


def test_float32_layer_keeps_dtype():
    layer = QKANLayer(2, 2, 2, seed=0)
    x = torch.rand(4, 2)
    ideal = layer(x)
    y = layer.set_evaluator("qiskit", **EXACT)(x)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, ideal, rtol=0, atol=1e-5)


# ------------------------------------------------------------------------------ gradients
def _all_grads(layer, x, weights):
    layer.zero_grad()
    x = x.clone().requires_grad_()
    (layer(x) * weights).sum().backward()
    return {n: p.grad.clone() for n, p in layer.named_parameters()} | {"x": x.grad.clone()}


@pytest.mark.parametrize("ansatz", ALL_ANSATZE)
@pytest.mark.parametrize("encoding,group", [("fixed", None), ("edge", None), ("input", "output")])
def test_parameter_shift_equals_autograd(ansatz, encoding, group):
    layer = random_layer(ansatz=ansatz, encoding=encoding, group=group, bias=True, in_dim=3)
    x, weights = _inputs(4, 3), torch.tensor([1.0, -2.0], dtype=torch.float64)
    ref = _all_grads(layer, x, weights)
    layer.set_evaluator("qiskit", **EXACT)
    got = _all_grads(layer, x, weights)
    assert got.keys() == ref.keys()
    for name in ref:
        torch.testing.assert_close(got[name], ref[name], rtol=0, atol=1e-8, msg=name)
    assert layer.get_evaluator().jobs_submitted == 2  # forward + all shifts in one backward job


def test_backward_shifts_only_what_needs_gradients():
    layer = random_layer(ansatz="pz", reps=2, in_dim=2, out_dim=2)
    layer.set_evaluator("qiskit", pack=1, **EXACT)  # one parameter set per executed circuit
    x = _inputs(3, 2)  # no grad for x and a fixed encoding: only theta (3 slots x 2) is shifted
    layer(x).sum().backward()
    ev = layer.get_evaluator()
    n_edges = 3 * 2 * 2
    assert ev.circuits_submitted == n_edges + 2 * 6 * n_edges


# ------------------------------------------------------------------------------ shots
def test_aer_shots_within_five_sigma():
    shots = 4000
    layer = random_layer(ansatz="pz", encoding="edge", in_dim=3, out_dim=2, reps=2)
    x = _inputs(8, 3)
    exact = layer.edge_outputs(x).detach()
    layer.set_evaluator("qiskit", shots=shots, seed=7, threads=1)
    est = layer.edge_outputs(x).detach()
    sigma = torch.sqrt((1 - exact**2) / shots)
    z = (est - exact) / sigma
    assert z.abs().max() < 5
    assert 0.5 < z.std() < 1.5  # sampled: genuinely noisy, with the binomial spread
    again = layer.edge_outputs(x).detach()
    assert not torch.equal(again, est)  # each job draws a fresh seed ...
    layer.set_evaluator("qiskit", shots=shots, seed=7, threads=1)
    torch.testing.assert_close(layer.edge_outputs(x).detach(), est, rtol=0, atol=0)  # ... reproducibly


def test_shot_gradients_within_bounds():
    shots = 4000
    layer = random_layer(ansatz="rpz", encoding="edge", in_dim=2, out_dim=1, reps=2, base=None)
    x = _inputs(4, 2)
    ref = _all_grads(layer, x, torch.ones(1, dtype=torch.float64))
    layer.set_evaluator("qiskit", shots=shots, seed=3, threads=1)
    got = _all_grads(layer, x, torch.ones(1, dtype=torch.float64))
    # each shift derivative (f+ - f-)/2 has sd <= sqrt(1 / (2 S)); a parameter's gradient sums
    # N = 4 samples times |dL/df| <= max |c w| (theta: c = 1; x, w, b: |w|, |x| <= 1 here).
    bound = 5 * math.sqrt(4 / (2 * shots))
    for name in ("theta", "enc_weight", "enc_bias"):
        assert (got[name] - ref[name]).abs().max() < bound, name
    assert (got["x"] - ref["x"]).abs().max() < 5 * math.sqrt(2 / (2 * shots))  # 2 reps per x


# ------------------------------------------------------------------------------ jobs
def test_caps_split_pubs_and_jobs():
    layer = random_layer(ansatz="pz", in_dim=2, out_dim=2)
    x = _inputs(5, 2)  # 20 (sample, edge) pairs
    ideal = layer(x)
    layer.set_evaluator("qiskit", max_pub_size=3, max_circuits_per_job=8, threads=1, pack=1)
    torch.testing.assert_close(layer(x), ideal, rtol=0, atol=1e-10)
    assert layer.get_evaluator().jobs_submitted == 3 and layer.get_evaluator().circuits_submitted == 20
    layer.set_evaluator("qiskit", max_circuits_per_job=2, threads=1, pack=4)  # 5 packed rows of 4
    torch.testing.assert_close(layer(x), ideal, rtol=0, atol=1e-10)
    assert layer.get_evaluator().jobs_submitted == 3 and layer.get_evaluator().circuits_submitted == 5


def test_isa_circuit_transpiled_once(monkeypatch):
    import qiskit.transpiler

    calls = []
    original = qiskit.transpiler.generate_preset_pass_manager

    def counting(*args, **kwargs):
        calls.append(kwargs.get("backend"))
        return original(*args, **kwargs)

    monkeypatch.setattr(qiskit.transpiler, "generate_preset_pass_manager", counting)
    backend = AerSimulator.from_backend(FakeManilaV2(), max_parallel_threads=1)
    layer = random_layer(ansatz="pz", in_dim=2, out_dim=1).set_evaluator("qiskit", backend=backend, seed=1)
    x = _inputs(3, 2).requires_grad_()
    layer(x).sum().backward()
    layer(x)
    assert len(calls) == 1 and calls[0] is backend
    assert layer.get_evaluator().jobs_submitted == 3


def test_noisy_aer_from_fake_backend_is_close_to_ideal():
    """Exact expectation under FakeManilaV2's gate noise (no readout error): within 1e-2 of ideal."""
    layer = random_layer(ansatz="pz", encoding="edge", in_dim=2, out_dim=2)
    x = _inputs(4, 2)
    ideal = layer.edge_outputs(x)
    backend = AerSimulator.from_backend(FakeManilaV2(), max_parallel_threads=1)
    noisy = layer.set_evaluator("qiskit", backend=backend, seed=1).edge_outputs(x)
    diff = (noisy - ideal).abs()
    assert diff.max() < 1e-2 and diff.max() > 1e-6  # noise is there, and small


class _StubJob:
    def __init__(self, result=None, error=None):
        self._result, self._error = result, error

    def job_id(self):
        return "stub-job-7"

    def status(self):
        return "CANCELLED" if self._error else "DONE"

    def result(self):
        if self._error:
            raise RuntimeError(self._error)
        return self._result


class FlakyEstimator(BaseEstimatorV2):
    """Runs `ok_jobs` jobs on Aer's exact estimator, then every job is cancelled."""

    def __init__(self, ok_jobs: int = 0):
        self.ok_jobs = ok_jobs
        self._aer = AerEstimatorV2(options={"backend_options": {"max_parallel_threads": 1}})

    def run(self, pubs, *, precision=None):
        if self.ok_jobs > 0:
            self.ok_jobs -= 1
            return _StubJob(result=self._aer.run(pubs).result())
        return _StubJob(error="job cancelled by the provider")


@pytest.mark.parametrize("ok_jobs,stage", [(0, "forward"), (1, "backward")])
def test_failed_job_names_backend_job_and_layer_and_keeps_state(ok_jobs, stage):
    model = QKAN([2, 1], reps=2, seed=0, dtype=torch.float64)
    x, target = _inputs(4, 2), torch.zeros(4, 1, dtype=torch.float64)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    opt.zero_grad()
    ((model(x) - target) ** 2).mean().backward()
    opt.step()  # one closed-form step, so the optimizer has state
    params = {n: p.detach().clone() for n, p in model.named_parameters()}
    state = {k: {s: v.clone() for s, v in st.items()} for k, st in enumerate(opt.state.values())}

    model.set_evaluator("qiskit", backend=FlakyEstimator(ok_jobs))
    opt.zero_grad()
    with pytest.raises(QiskitJobError, match=rf"{stage} job stub-job-7 \(status CANCELLED\) on backend "
                       r"'FlakyEstimator' failed for layer QKANLayer\(in_dim=2, out_dim=1.*job cancelled"):
        ((model(x) - target) ** 2).mean().backward()
    for n, p in model.named_parameters():
        assert torch.equal(p, params[n]), n
    for k, st in enumerate(opt.state.values()):
        assert all(torch.equal(v, state[k][s]) for s, v in st.items())

    model.set_evaluator("auto")  # training moves back to closed form
    opt.zero_grad()
    ((model(x) - target) ** 2).mean().backward()
    opt.step()


# ------------------------------------------------------------------------------ training
def test_qkan_trains_end_to_end_like_closed_form():
    """Three Adam steps through Qiskit (exact) give the closed form's parameters to 1e-8."""
    x = _inputs(6, 2)
    y = torch.sin(2 * x[:, :1]) * x[:, 1:]

    def train(evaluator, **options):
        model = QKAN([2, 2, 1], reps=1, seed=0, dtype=torch.float64)
        if evaluator != "auto":
            model.set_evaluator(evaluator, **options)
        opt = torch.optim.Adam(model.parameters(), lr=0.05)
        for _ in range(3):
            opt.zero_grad()
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
        return model, loss.item()

    ref, ref_loss = train("auto")
    got, got_loss = train("qiskit", **EXACT)
    assert abs(got_loss - ref_loss) < 1e-10
    for (n, p), q in zip(got.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-8, msg=n)


def test_closed_form_model_on_fake_manila_runtime_estimator():
    """A model trained in closed form, run by qiskit-ibm-runtime's EstimatorV2 on FakeManilaV2.

    Stated distance: each first-layer edge value is within 2 max(p(0|1), p(1|0)) (readout error
    of the qubit used) + 0.02 (gate errors and relaxation) + 5 / sqrt(S) (shots) of ideal; the
    model output within 0.3 of ideal (targets are in [-1, 1]).
    """
    x = _inputs(6, 2, seed=1) / 0.6
    y = torch.sin(2 * x[:, :1]) * x[:, 1:]
    model = QKAN([2, 2, 1], reps=2, seed=0, dtype=torch.float64)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(40):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
    ideal_edges = model.layers[0].edge_outputs(x).detach()
    ideal = model(x).detach()

    fake, shots = FakeManilaV2(), 2000
    estimator = RuntimeEstimatorV2(mode=fake)
    estimator.options.simulator.seed_simulator = 5
    model.set_evaluator("qiskit", backend=estimator, shots=shots, seed=5)
    first = model.layers[0].get_evaluator()
    noisy_edges = model.layers[0].edge_outputs(x).detach()
    noisy = model(x).detach()

    (qubit,) = first.physical_qubits
    props = fake.properties().qubit_property(qubit)
    readout = max(props["prob_meas0_prep1"][0], props["prob_meas1_prep0"][0])
    bound = 2 * readout + 0.02 + 5 / math.sqrt(shots)
    assert (noisy_edges - ideal_edges).abs().max() < bound
    assert (noisy - ideal).abs().max() < 0.3
    assert (noisy - ideal).abs().max() > 1e-3  # it really ran with noise and shots


# ------------------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    "options,match",
    [
        ({"shots": 0}, r"`shots` must be an int >= 1 or None; got 0"),
        ({"precision": -0.1}, r"`precision` must be a number >= 0; got -0.1"),
        ({"precision": 0}, r"`precision` must be a number >= 3.16e-05 \(at most 1e\+09 shots\) or None; got 0"),
        ({"precision": 1e-30}, r"`precision` must be a number >= 3.16e-05"),
        ({"shots": 2**63}, r"`shots` must be an int <= 1000000000 or None"),
        ({"shots": 10, "precision": 0.1}, r"give `shots` or `precision`, not both"),
        ({"optimization_level": 4}, r"`optimization_level` must be an int <= 3; got 4"),
        ({"max_pub_size": 0}, r"`max_pub_size` must be an int >= 1; got 0"),
        ({"max_circuits_per_job": 0}, r"`max_circuits_per_job` must be an int >= 1 or None; got 0"),
        ({"threads": 0}, r"`threads` must be an int >= 1 or None; got 0"),
        ({"seed": -1}, r"`seed` must be an int >= 0 or None; got -1"),
        ({"backend": "ibm_kyiv"}, r"`backend` must be None, a qiskit BackendV2 .* got str"),
    ],
)
def test_bad_options(options, match):
    with pytest.raises(ValueError, match=match):
        QiskitEvaluator(**options)


def test_amplitude_measure_is_unsupported():
    layer = random_layer(measure="amplitude", in_dim=3)
    with pytest.raises(ValueError, match=r"cannot run this layer: measure 'amplitude' is not an observable"):
        layer.set_evaluator("qiskit")


def test_precision_option_sets_shots():
    ev = QiskitEvaluator(precision=0.05, threads=1)
    assert math.ceil(1 / ev.precision**2) == 400
    for shots in (1, 1000, 4096, 12345):
        assert math.ceil(1 / QiskitEvaluator(shots=shots).precision ** 2) == shots
    assert np.isclose(QiskitEvaluator(shots=100).precision, 0.1)


@pytest.mark.parametrize("optimization_level", [0, 3])
@pytest.mark.parametrize("ansatz", ALL_ANSATZE)
def test_isa_circuits_for_a_device_target_stay_exact(ansatz, optimization_level):
    """Transpiled to an rz/sx/x basis on a 3-qubit device (no noise): still the closed form to 1e-10."""
    from qiskit.providers.fake_provider import GenericBackendV2

    device = GenericBackendV2(num_qubits=3, basis_gates=["rz", "sx", "x", "cx"], seed=0, noise_info=False)
    backend = AerSimulator.from_backend(device, max_parallel_threads=1)
    layer = random_layer(ansatz=ansatz, encoding="edge", in_dim=2, out_dim=2)
    x = _inputs(4, 2)
    ideal = layer.edge_outputs(x)
    layer.set_evaluator("qiskit", backend=backend, optimization_level=optimization_level, seed=2)
    torch.testing.assert_close(layer.edge_outputs(x), ideal, rtol=0, atol=1e-10)
    isa = layer.get_evaluator()._compiled(layer.ansatz, layer.reps, 1).circuit
    assert isa.num_qubits == 3 and set(isa.count_ops()) <= {"rz", "sx", "x"}

"""Hardware paths of the Qiskit evaluator: binomial shots, packing, calibrated
qubits, mitigation, jobs.

References are independent of the code under test: the closed form (fourier/su2 evaluators),
noise-free and noisy exact values from Aer, closed-form shot statistics (sigma =
sqrt((1 - m^2) / S)), Lagrange weights written out, and Qiskit's Operator. Fixed seeds.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch

pytest.importorskip("qiskit_aer")

from qiskit.quantum_info import Operator  # noqa: E402
from qiskit_aer import AerSimulator  # noqa: E402
from qiskit_ibm_runtime.fake_provider import FakeManilaV2, FakeSherbrooke  # noqa: E402

from qkan import QKANLayer  # noqa: E402
from qkan.simulators.hardware.layout import qubit_calibration, rank_qubits  # noqa: E402
from qkan.simulators.hardware.mitigation import extrapolation_weights, fold, readout_correct  # noqa: E402
from qkan.simulators.hardware.packing import pack_circuit, pack_rows, unpack_rows  # noqa: E402
from qkan.simulators.hardware.shots import binomial_estimates, noise_model_readout  # noqa: E402
from qkan.simulators.qiskit import QiskitEvaluator, QiskitJobError  # noqa: E402
from qkan.testing import random_layer  # noqa: E402


_layer = functools.partial(random_layer, encoding="edge")


def _inputs(n: int, dim: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, dim, generator=gen, dtype=torch.float64) * 1.8 - 0.9


def _noisy_manila() -> AerSimulator:
    return AerSimulator.from_backend(FakeManilaV2(), max_parallel_threads=1)


# ------------------------------------------------------------------------------ binomial shots
def test_binomial_draw_matches_closed_form_moments():
    rng = np.random.default_rng(0)
    exact = np.linspace(-0.95, 0.95, 20_000)
    e01, e10, shots = 0.03, 0.08, 500
    est = binomial_estimates(rng, exact, shots, e01, e10)
    mean = (e10 - e01) + exact * (1 - e01 - e10)  # z' of a readout-flipped qubit
    z = (est - mean) / np.sqrt((1 - mean**2) / shots)
    assert abs(z.mean()) < 0.05 and 0.97 < z.std() < 1.03
    assert set(np.unique(np.round((1 - est) / 2 * shots, 9))) <= set(range(shots + 1))  # whole shot counts


def test_aer_shots_pass_the_z_test_against_the_closed_form():
    """>= 10,000 values from Aer at shots=1024: z-scores have std within [0.9, 1.1] (fixed seed)."""
    shots = 1024
    layer = _layer(4, 4, 3, encoding="fixed")
    x = _inputs(640, 4)  # 640 * 16 = 10,240 edge values
    exact = layer.edge_outputs(x).detach()
    layer.set_evaluator("qiskit", shots=shots, seed=11, threads=1, pack="auto")
    est = layer.edge_outputs(x).detach()
    z = (est - exact) / torch.sqrt((1 - exact**2) / shots)
    assert z.numel() >= 10_000
    assert 0.9 < z.std().item() < 1.1 and abs(z.mean().item()) < 0.05
    ev = layer.get_evaluator()
    assert ev.jobs_submitted == 1 and ev.circuits_submitted == 10_240 // 64


def test_noisy_aer_shots_fold_in_readout_error():
    """Noisy Aer + shots: mean = readout map of the exact noisy value (rates from FakeManilaV2's target)."""
    shots, sim = 4000, _noisy_manila()
    layer = _layer(2, 2, 2)
    x = _inputs(400, 2)
    noisy = layer.set_evaluator("qiskit", backend=sim, pack="auto").edge_outputs(x).detach().numpy()
    qubits = layer.get_evaluator().physical_qubits
    layer.set_evaluator("qiskit", backend=sim, pack="auto", shots=shots, seed=3)
    est = layer.edge_outputs(x).detach().numpy()
    e = np.array([FakeManilaV2().target["measure"][(q,)].error for q in qubits])  # symmetric in the noise model
    slots = np.arange(noisy.size) % len(qubits)  # packed slot of each (sample, edge) value
    mean = noisy.reshape(-1) * (1 - 2 * e[slots])
    z = (est.reshape(-1) - mean) / np.sqrt((1 - mean**2) / shots)
    assert 0.9 < z.std() < 1.1 and abs(z.mean()) < 0.1


# ------------------------------------------------------------------------------ packing
def test_device_less_aer_packs_by_default():
    """Without a device, qubits have no identity: pack=None simulates 64 per circuit, same values."""
    layer = _layer(4, 4, 2, encoding="fixed")
    x = _inputs(8, 4)  # 128 values
    ref = layer.edge_outputs(x)
    layer.set_evaluator("qiskit", threads=1)
    torch.testing.assert_close(layer.edge_outputs(x), ref, rtol=0, atol=1e-10)
    assert layer.get_evaluator().circuits_submitted == 2 and len(layer.get_evaluator().physical_qubits) == 64
    layer.set_evaluator("qiskit", threads=1, pack=1)
    layer.edge_outputs(x)
    assert layer.get_evaluator().circuits_submitted == 128


def test_pack_rows_round_trip():
    values = np.arange(7 * 3, dtype=float).reshape(7, 3)
    rows = pack_rows(values, 3)
    assert rows.shape == (3, 9) and np.array_equal(rows[1, 3:6], values[4]) and not rows[2, 3:].any()
    assert np.array_equal(unpack_rows(rows[:, ::3], 7), values[:, 0])


def test_packed_circuit_is_a_product_of_edge_circuits():
    from qkan.circuits.ansatz import ANSATZE
    from qkan.circuits.qiskit import ansatz_circuit

    ansatz = ANSATZE["rpz"]
    packed = pack_circuit(ansatz, 2, 3)
    edge, theta, phi = ansatz_circuit(ansatz, 2, gate_angles=True)
    rng = np.random.default_rng(0)
    vals = rng.uniform(-2, 2, (3, packed.P))
    bound = packed.circuit.assign_parameters(dict(zip(packed.circuit.parameters, vals.reshape(-1)[packed.columns()])))
    ops = [Operator(edge.assign_parameters(dict(zip([*theta, *phi], v)))) for v in vals]
    assert Operator(bound).equiv(ops[2].tensor(ops[1]).tensor(ops[0]))  # qubit q runs parameter set q


@pytest.mark.parametrize("pack", [3, "auto"])
def test_packed_exact_values_and_gradients_equal_closed_form(pack):
    layer = _layer(3, 2, 2, ansatz="mix", bias=True)
    x = _inputs(5, 3).requires_grad_()
    ref_y = layer(x)
    ref = torch.autograd.grad(ref_y.square().sum(), [x, *layer.parameters()])
    layer.set_evaluator("qiskit", threads=1, pack=pack)
    y = layer(x)
    torch.testing.assert_close(y, ref_y, rtol=0, atol=1e-10)
    got = torch.autograd.grad(y.square().sum(), [x, *layer.parameters()])
    for g, r in zip(got, ref):
        torch.testing.assert_close(g, r, rtol=0, atol=1e-8)
    ev = layer.get_evaluator()
    M, shifted = 30, 2 * (layer.ansatz.n_slots(2) * layer.ansatz.k + 2) * 30  # 2 shifts x (theta + 2 phi) angles
    k_forward, k_backward = (3, 3) if pack == 3 else (M, 64)  # "auto": 64 on Aer, at most one per value
    assert ev.circuits_submitted == math.ceil(M / k_forward) + math.ceil(shifted / k_backward)


def test_packed_shift_rule_passes_gradcheck():
    layer = _layer(2, 1, 1, ansatz="rpz", base=None)
    layer.set_evaluator("qiskit", threads=1, pack="auto")
    x = _inputs(2, 2).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: layer(t), (x,), eps=1e-6, atol=1e-6, rtol=1e-5)


def test_packed_on_a_fake_backend_in_local_mode_uses_distinct_qubits():
    fake = FakeManilaV2()
    layer = _layer(2, 2, 1)
    x = _inputs(5, 2)  # 20 values on 5 qubits: 4 executed parameter sets
    exact = layer.edge_outputs(x).detach()
    layer.set_evaluator("qiskit", backend=fake, pack="auto", initial_layout=[0, 1, 2, 3, 4], shots=4000, seed=2,
                        mitigation={"readout": True}, product_simulation=False)  # the route of real backends
    est = layer.edge_outputs(x).detach()
    ev = layer.get_evaluator()
    assert ev.simulated_by == "backend" and ev.physical_qubits == [0, 1, 2, 3, 4]
    assert ev.circuits_submitted == 4 + 2  # + the two readout calibration circuits
    # sampled (readout calibrated from 4000-shot circuits) with gate noise <= 0.02: a loose bound
    assert (est - exact).abs().max() < 0.02 + 6 / math.sqrt(4000) * 1.3


# ------------------------------------------------------------------------------ qubit choice
def test_rank_qubits_from_the_target():
    target = FakeSherbrooke().target
    cal = qubit_calibration(target)
    ranked = rank_qubits(target, reps=3)
    chosen = ranked[:64]
    assert np.mean(cal["readout"][chosen]) < np.median(cal["readout"][np.isfinite(cal["readout"])])
    assert len(set(ranked)) == len(ranked)
    cut = rank_qubits(target, reps=3, max_readout_error=0.01)
    assert cut and all(cal["readout"][q] <= 0.01 for q in cut) and set(cut) < set(ranked)
    # score order: readout + 8 pulses' error + decoherence is non-decreasing along the ranking
    score = cal["readout"][ranked] + 8 * cal["gate"][ranked]
    assert score[0] <= np.median(score)


def test_faulty_qubits_are_skipped():
    from qiskit.providers.fake_provider import GenericBackendV2

    device = GenericBackendV2(num_qubits=4, basis_gates=["rz", "sx", "x", "cx"], seed=0)
    target = device.target
    target["measure"][(1,)].error = 0.6  # broken readout
    target.update_instruction_properties("sx", (2,), None)  # no calibration: faulty
    ranked = rank_qubits(target, reps=2)
    assert 1 not in ranked and 2 not in ranked and sorted(ranked) == [0, 3]


def test_initial_layout_auto_and_list():
    sim = _noisy_manila()
    layer = _layer(2, 1, 1)
    x = _inputs(2, 2)
    layer.set_evaluator("qiskit", backend=sim, initial_layout="auto", max_readout_error=0.03, pack="auto")
    layer.edge_outputs(x)
    target = FakeManilaV2().target
    chosen = layer.get_evaluator().physical_qubits
    assert all(target["measure"][(q,)].error <= 0.03 for q in chosen) and 2 not in chosen  # qubit 2: 9.6%
    layer.set_evaluator("qiskit", backend=sim, initial_layout=[4, 1])
    layer.edge_outputs(x)
    assert layer.get_evaluator().physical_qubits == [4]
    layer.set_evaluator("qiskit", backend=sim, initial_layout=[4, 1], pack=2)
    layer.edge_outputs(x)
    assert layer.get_evaluator().physical_qubits == [4, 1]


# ------------------------------------------------------------------------------ mitigation
def test_richardson_and_linear_weights():
    np.testing.assert_allclose(extrapolation_weights([1, 3, 5]), [15 / 8, -5 / 4, 3 / 8], rtol=1e-14)
    np.testing.assert_allclose(extrapolation_weights([1, 3]), [3 / 2, -1 / 2], rtol=1e-14)
    c = np.array([1.0, 3.0, 5.0, 7.0])
    quad = 0.3 - 0.2 * c + 0.05 * c**2 - 0.01 * c**3  # Richardson is exact on the cubic through 4 points
    assert abs(extrapolation_weights(c) @ quad - 0.3) < 1e-12
    line = 0.7 - 0.1 * c + np.array([0.01, -0.02, 0.02, -0.01])  # least squares line: intercept by lstsq
    intercept = np.polyfit(c, line, 1)[1]
    assert abs(extrapolation_weights(c, "linear") @ line - intercept) < 1e-12


def test_readout_inversion_is_exact_in_expectation():
    z = np.linspace(-1, 1, 11)
    e01, e10 = 0.04, 0.11
    measured = (e10 - e01) + z * (1 - e01 - e10)  # the confusion matrix applied
    np.testing.assert_allclose(readout_correct(measured, e01, e10), z, atol=1e-15)


@pytest.mark.parametrize("scale", [1, 3, 5])
def test_folding_keeps_the_unitary(scale):
    layer = _layer(1, 1, 2, ansatz="rpz")
    sim = _noisy_manila()
    ev = QiskitEvaluator(sim)
    packed = ev._compiled(layer.ansatz, 2, 1)
    folded = fold(packed.circuit, scale)
    assert folded.count_ops().get("sx", 0) == scale * packed.circuit.count_ops().get("sx", 0)
    assert set(folded.count_ops()) <= {"rz", "sx", "x", "barrier"}
    vals = np.random.default_rng(1).uniform(-2, 2, len(packed.circuit.parameters))
    bind = lambda c: c.assign_parameters(dict(zip(c.parameters, vals)))  # noqa: E731
    assert Operator(bind(folded.remove_final_measurements(inplace=False))).equiv(Operator(bind(packed.circuit)))


def _trained_layer() -> tuple[QKANLayer, torch.Tensor]:
    from qkan import QKAN

    x = _inputs(24, 2, seed=4)
    y = torch.sin(2 * x[:, :1]) * x[:, 1:]
    model = QKAN([2, 2, 1], reps=3, seed=0, dtype=torch.float64)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(60):
        opt.zero_grad()
        ((model(x) - y) ** 2).mean().backward()
        opt.step()
    return model.layers[0], x


def test_readout_mitigated_shots_are_unbiased():
    """Noisy Aer + shots + readout inversion: z-scores against the exact noisy value (gate noise
    only) with the inverted sigma sqrt((1 - m^2) / S) / (1 - 2e) have mean 0 and std 1."""
    shots, sim = 2000, _noisy_manila()
    layer = _layer(2, 2, 2)
    x = _inputs(300, 2)
    noisy = layer.set_evaluator("qiskit", backend=sim, pack="auto").edge_outputs(x).detach().numpy().reshape(-1)
    qubits = layer.get_evaluator().physical_qubits
    layer.set_evaluator("qiskit", backend=sim, pack="auto", shots=shots, seed=8, mitigation={"readout": True})
    est = layer.edge_outputs(x).detach().numpy().reshape(-1)
    e = np.array([FakeManilaV2().target["measure"][(q,)].error for q in qubits])[np.arange(est.size) % len(qubits)]
    measured = noisy * (1 - 2 * e)
    z = (est - noisy) / (np.sqrt((1 - measured**2) / shots) / (1 - 2 * e))
    inside = np.abs(est) < 1  # clipped values are not Gaussian
    assert abs(z[inside].mean()) < 0.08 and 0.9 < z[inside].std() < 1.1


def test_mitigation_cuts_the_error_on_fake_manila_noise():
    """Readout inversion (rates of the noise model) removes most of the error at 20,000 shots."""
    layer, x = _trained_layer()
    exact = layer.edge_outputs(x).detach()
    sim = _noisy_manila()
    errors = {}
    for name, mitigation in [("raw", None), ("readout", {"readout": True}),
                             ("zne", {"readout": True, "zne": [1, 3, 5], "extrapolation": "linear", "repeats": 2})]:
        layer.set_evaluator("qiskit", backend=sim, shots=20_000, seed=5, pack="auto", mitigation=mitigation)
        errors[name] = (layer.edge_outputs(x).detach() - exact).abs().mean().item()
    assert errors["raw"] > 0.02
    assert errors["readout"] <= errors["raw"] / 3 and errors["zne"] <= errors["raw"] / 3


def test_zne_reduces_gate_noise_without_shots():
    """Exact noisy values (no readout, no shots): Richardson on 1, 3, 5 folds is closer to ideal."""
    layer, x = _trained_layer()
    exact = layer.edge_outputs(x).detach()
    sim = _noisy_manila()
    raw = layer.set_evaluator("qiskit", backend=sim, pack="auto").edge_outputs(x).detach()
    zne = layer.set_evaluator("qiskit", backend=sim, pack="auto", mitigation={"zne": [1, 3, 5]}).edge_outputs(x).detach()
    assert (zne - exact).abs().mean() < (raw - exact).abs().mean() / 5


def test_parameter_shift_on_mitigated_values():
    """Shifted circuits are mitigated like the forward: on an ideal simulator ZNE is the identity
    (folds are U U^dag U = U, weights sum to 1), so gradients equal the closed form to 1e-8; on
    noise, the mitigated gradient is closer to the ideal gradient than the raw one."""
    layer, x = _trained_layer()
    x = x[:8].clone().requires_grad_()
    ideal = torch.autograd.grad(layer(x).sum(), [x, layer.theta])
    mitigation = {"zne": [1, 3, 5], "extrapolation": "richardson"}
    layer.set_evaluator("qiskit", threads=1, pack="auto", mitigation=mitigation)
    for g, r in zip(torch.autograd.grad(layer(x).sum(), [x, layer.theta]), ideal):
        torch.testing.assert_close(g, r, rtol=0, atol=1e-8)
    sim = _noisy_manila()
    errors = []
    for m in (None, mitigation):
        layer.set_evaluator("qiskit", backend=sim, pack="auto", mitigation=m)
        grads = torch.autograd.grad(layer(x).sum(), [x, layer.theta])
        errors.append(sum((g - r).abs().sum().item() for g, r in zip(grads, ideal)))
    assert errors[1] < errors[0] / 3


# ------------------------------------------------------------------------------ jobs
def test_split_jobs_callback_and_batch_mode_in_local_mode():
    events = []
    layer = _layer(2, 2, 1)
    x = _inputs(4, 2)
    exact = layer.edge_outputs(x).detach()
    layer.set_evaluator("qiskit", backend=FakeManilaV2(), mode="batch", shots=2000, seed=1, pack=4,
                        max_circuits_per_job=2, job_callback=lambda event, info: events.append((event, info)))
    est = layer.edge_outputs(x).detach()  # 16 values -> 4 packed rows -> 2 jobs
    ev = layer.get_evaluator()
    from qiskit_ibm_runtime import Batch

    assert isinstance(ev._session, Batch)
    assert [e for e, _ in events] == ["submitted", "submitted", "done", "done"]
    assert all(i["backend"] == "fake_manila" and i["circuits"] == 2 and i["job_id"] for _, i in events)
    assert events[2][1]["job_id"] == events[0][1]["job_id"] and events[2][1]["status"] == "DONE"
    assert ev.jobs_submitted == 2
    assert (est - exact).abs().max() < 0.25  # sampled with readout error, in order (a wrong order is off by > 1)
    fake = ev.backend
    other = QiskitEvaluator(fake, mode="batch")
    assert other._session is ev._session  # a model's layers share one Batch per backend
    ev.close()
    assert QiskitEvaluator(fake, mode="batch")._session is not other._session  # closed: a new one opens


def test_session_mode_and_runtime_options_reach_the_runtime_estimator():
    from qiskit_ibm_runtime import Session

    ev = QiskitEvaluator(FakeManilaV2(), mode="session", runtime_options={"resilience_level": 2, "default_shots": 64})
    assert isinstance(ev._session, Session)
    options = ev._executor.estimator.options
    assert options.resilience_level == 2 and options.default_shots == 64
    ev.close()
    from qiskit_ibm_runtime.options.utils import Unset

    from qiskit.providers.fake_provider import GenericBackendV2

    mitigated = QiskitEvaluator(FakeManilaV2(), mitigation={"readout": True})  # fake: levels do nothing
    assert isinstance(mitigated._executor.estimator.options.resilience_level, type(Unset))
    device = GenericBackendV2(num_qubits=2, seed=0)  # stands in for an IBM device: no TREX on top of qkan's
    assert QiskitEvaluator(device, mitigation={"readout": True})._executor.estimator.options.resilience_level == 0
    with pytest.raises(ValueError, match=r"runtime_options.*qiskit-ibm-runtime"):
        QiskitEvaluator(AerSimulator(), runtime_options={"resilience_level": 1})


def test_run_tasks_submits_all_then_collects_in_order(capsys):
    import time
    from concurrent.futures import ThreadPoolExecutor

    from qkan.simulators.hardware.jobs import Task, run_tasks

    pool, log = ThreadPoolExecutor(4), []

    class Job:
        def __init__(self, n):
            self.n, self.future = n, pool.submit(lambda: (time.sleep(0.2 * (3 - n)), log.append(("ran", n)))[1])

        def job_id(self):
            return f"job-{self.n}"

        def status(self):
            return "DONE" if self.future.done() else "RUNNING"

        def result(self):
            self.future.result()
            return self.n

    def task(n):
        return Task(lambda: (log.append(("submit", n)), Job(n))[1], lambda r: (np.array([r * 10.0]), None), circuits=1)

    out = run_tasks([task(n) for n in range(3)], backend="stub", stage="forward", layer="L", progress=False)
    assert [v.item() for v, _ in out] == [0, 10, 20]  # in task order although job 2 finished first
    assert [e for e in log if e[0] == "submit"] == log[:3]  # every job submitted before any ran to the end
    assert log[3] == ("ran", 2)
    assert capsys.readouterr().err == ""  # progress=False: no bar


def test_failed_job_reports_through_the_callback():
    events = []
    layer = _layer(1, 1, 1)

    class Broken:
        def run(self, *args, **kwargs):
            raise RuntimeError("backend offline")

    ev = QiskitEvaluator(threads=1, job_callback=lambda event, info: events.append((event, info)),
                         product_simulation=False)
    ev._executor.simulator = Broken()
    layer._evaluator = ev
    theta = layer.theta.detach().clone()
    with pytest.raises(QiskitJobError, match=r"forward job <not submitted> .*backend offline"):
        ev.edge_outputs(layer, _inputs(2, 1))
    assert events[-1][0] == "failed" and "backend offline" in events[-1][1]["error"]
    assert torch.equal(layer.theta, theta)


# ------------------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    "options,error,match",
    [
        ({"pack": 0}, ValueError, r"`pack` must be an int >= 1"),
        ({"pack": "all"}, TypeError, r"`pack` must be an int"),
        ({"initial_layout": [1, 1]}, ValueError, r"`initial_layout` must list distinct physical qubits"),
        ({"initial_layout": "best"}, TypeError, r"`initial_layout` must be list or tuple"),
        ({"max_readout_error": 2}, ValueError, r"`max_readout_error` must be a number >= 0 and <= 1"),
        ({"mitigation": {"zne": [1, 2]}}, ValueError, r"scales must be odd"),
        ({"mitigation": {"zne": [3]}}, ValueError, r"at least two different scales"),
        ({"mitigation": {"extrapolation": "cubic"}}, ValueError, r"`mitigation\['extrapolation'\]` must be one of"),
        ({"mitigation": {"repeat": 2}}, ValueError, r"unknown \['repeat'\]"),
        ({"mitigation": {"repeats": 0}}, ValueError, r"`mitigation\['repeats'\]` must be an int >= 1"),
        ({"mode": "batch"}, ValueError, r"`runtime_options` and `mode` are for qiskit-ibm-runtime backends"),
        ({"mode": "queue"}, ValueError, r"`mode` must be one of \['batch', 'session'\]"),
        ({"job_callback": 3}, TypeError, r"`job_callback` must be callable"),
    ],
)
def test_bad_hardware_options(options, error, match):
    with pytest.raises(error, match=match):
        QiskitEvaluator(**options)


def test_auto_layout_needs_calibration_data():
    ev = QiskitEvaluator(threads=1, initial_layout="auto")  # a device-less simulator has none to rank
    with pytest.raises(ValueError, match=r"`initial_layout='auto'` and `max_readout_error` need a backend with calib"):
        ev.run_values(_layer(), np.zeros((1, 8)))


def test_max_readout_error_alone_ranks_the_qubits():
    layer = _layer(1, 1, 1)
    layer.set_evaluator("qiskit", backend=_noisy_manila(), pack="auto", max_readout_error=0.02)
    layer.edge_outputs(_inputs(3, 1))
    assert layer.get_evaluator().physical_qubits == [3, 4]  # readout 1.44%, 1.86% (then 2.19% > 2%)



@pytest.mark.parametrize("ansatz", ["pz", "rpz", "px", "real", "mix"])
def test_zne_on_an_ideal_simulator_is_exact_for_every_ansatz(ansatz):
    """Folds of any transpiled basis (here AerSimulator's, with u2 for "real") are the identity
    on an ideal simulator, so mitigated values equal the closed form."""
    layer = _layer(2, 2, 2, ansatz=ansatz)
    x = _inputs(3, 2)
    ref = layer.edge_outputs(x)
    layer.set_evaluator("qiskit", backend=AerSimulator(max_parallel_threads=1), pack=2,
                        mitigation={"zne": [1, 3, 5], "repeats": 2})
    torch.testing.assert_close(layer.edge_outputs(x), ref, rtol=0, atol=1e-10)


# ------------------------------------------------------------------------------ calibrated "auto" qubits
def test_pack_auto_on_sherbrooke_uses_the_better_half_of_the_chip():
    """4->4, reps 3, 16 samples: >= 50x fewer executed parameter sets than unpacked, on qubits whose
    mean readout error is below the chip median (the "auto" rule: readout <= median, no sx/x outlier)."""
    fake = FakeSherbrooke()
    cal = qubit_calibration(fake.target)
    layer = _layer(4, 4, 3, encoding="fixed")
    x = _inputs(16, 4)
    layer.set_evaluator("qiskit", backend=fake, pack="auto", initial_layout="auto")
    layer.edge_outputs(x)
    ev = layer.get_evaluator()
    qubits = ev.physical_qubits
    median = float(np.nanmedian(cal["readout"][rank_qubits(fake.target, 3)]))
    assert 256 / ev.circuits_submitted >= 50
    assert np.mean(cal["readout"][qubits]) < median and all(cal["readout"][q] <= median for q in qubits)
    assert all(cal["gate"][q] <= 2 * np.nanmedian(cal["gate"]) for q in qubits)
    report = ev.qubit_report
    assert report["qubits"] == qubits and report["chip_median_readout_error"] == pytest.approx(median)
    assert report["mean_readout_error"] == pytest.approx(np.mean(cal["readout"][qubits]))
    # pack="auto" alone chooses the same calibrated qubits; an explicit list keeps full control
    layer.set_evaluator("qiskit", backend=fake, pack="auto")
    layer.edge_outputs(x)
    assert layer.get_evaluator().physical_qubits == qubits
    layer.set_evaluator("qiskit", backend=fake, pack=3, initial_layout=[126, 0, 7])
    layer.edge_outputs(x[:1])
    assert layer.get_evaluator().physical_qubits == [126, 0, 7]


def test_an_int_pack_beyond_the_median_set_takes_the_next_best_qubits():
    """FakeManilaV2: 3 of 5 qubits pass the median rule; pack=5 with initial_layout="auto" takes all 5,
    best first; with an explicit max_readout_error the threshold holds (ValueError)."""
    sim = _noisy_manila()
    layer = _layer(1, 1, 1)
    layer.set_evaluator("qiskit", backend=sim, pack="auto", initial_layout="auto")
    layer.edge_outputs(_inputs(5, 1))
    auto = layer.get_evaluator().physical_qubits
    layer.set_evaluator("qiskit", backend=sim, pack=5, initial_layout="auto")
    layer.edge_outputs(_inputs(5, 1))
    assert len(auto) == 3 and layer.get_evaluator().physical_qubits[:3] == auto
    assert sorted(layer.get_evaluator().physical_qubits) == [0, 1, 2, 3, 4]
    layer.set_evaluator("qiskit", backend=sim, pack=5, initial_layout="auto", max_readout_error=0.02)
    with pytest.raises(ValueError, match=r"`pack`=5 needs 5 qubits; `initial_layout` gives 2"):
        layer.edge_outputs(_inputs(5, 1))


@pytest.mark.parametrize(
    "options,match",
    [
        ({"pack": 6}, r"`pack` must be at most the 5 qubits of 'fake_manila'; got 6"),
        ({"initial_layout": [0, 5]}, r"`initial_layout` must list qubits 0..4 of 'fake_manila'; got \[0, 5\]"),
    ],
)
def test_pack_and_layout_larger_than_the_device(options, match):
    with pytest.raises(ValueError, match=match):
        QiskitEvaluator(FakeManilaV2(), **options)


# ------------------------------------------------------------------------------ qubit-by-qubit simulation
@pytest.mark.parametrize("mitigation", [None, {"zne": [1, 3]}])
def test_qubit_by_qubit_equals_aer_density_matrix(mitigation):
    """Exact noisy values: the Pauli-transfer simulation equals Aer's density matrix (float64) on
    FakeManilaV2's noise, folded circuits included."""
    sim = _noisy_manila()
    layer = _layer(3, 2, 2, ansatz="mix")
    x = _inputs(5, 3)
    values = []
    for product in (True, False):
        layer.set_evaluator("qiskit", backend=sim, pack="auto", mitigation=mitigation, product_simulation=product)
        values.append(layer.edge_outputs(x).detach())
        assert layer.get_evaluator().simulated_by == ("qubit by qubit" if product else "backend")
    torch.testing.assert_close(values[0], values[1], rtol=0, atol=1e-12)
    if mitigation is None:
        assert (values[0] - layer.set_evaluator("auto").edge_outputs(x)).abs().max() > 1e-3  # noise is there


def test_qubit_by_qubit_shots_are_distributed_as_aer_sampling():
    """Chi-square: per-qubit counts of the packed circuit sampled by Aer (measure, readout error,
    stochastic noise) against the binomial with the qubit-by-qubit p' = P(read 1)."""
    from qiskit import transpile

    fake = FakeManilaV2()
    sim = AerSimulator.from_backend(fake, max_parallel_threads=1, seed_simulator=5)
    layer = _layer(1, 1, 2, ansatz="rpz")
    ev = QiskitEvaluator(sim, shots=1000, pack=5, seed=0)
    packed = ev._compiled(layer.ansatz, 2, 5)
    rows = np.random.default_rng(3).uniform(-2, 2, (40, packed.k * packed.P))
    exact = ev._product.exact(packed, 1, rows)  # (40, 5)
    e01, e10 = ev._product.rates(packed)
    p1 = (1 - exact) / 2 * (1 - e10) + (1 + exact) / 2 * e01  # P(read 1)
    circuits = []
    for row in rows:
        c = packed.circuit.assign_parameters(dict(zip(packed.circuit.parameters, row[packed.columns()])))
        c.measure_all()
        circuits.append(transpile(c, sim, optimization_level=0))
    counts = sim.run(circuits, shots=1000).result().get_counts()
    ones = np.array([[sum(n for bits, n in cnt.items() if bits[::-1][q] == "1") for q in packed.physical]
                     for cnt in counts])  # (40, 5) ones per physical qubit
    z = (ones - 1000 * p1) / np.sqrt(1000 * p1 * (1 - p1))
    chi2 = float((z**2).sum())  # ~ chi2(200): mean 200, sd 20
    assert abs(chi2 - z.size) < 5 * math.sqrt(2 * z.size) and abs(z.mean()) < 5 / math.sqrt(z.size)


def test_fake_backend_local_mode_matches_qubit_by_qubit_shots():
    """The runtime route (product_simulation=False: qiskit-ibm-runtime's sampler in local mode)
    and the qubit-by-qubit route have the same distribution: z-scores of both against the exact
    noisy mean after readout, same sigma."""
    fake, shots = FakeManilaV2(), 2000
    layer = _layer(2, 2, 1)
    x = _inputs(20, 2)  # 80 values
    layer.set_evaluator("qiskit", backend=fake, pack="auto", initial_layout=[0, 1, 3, 4])  # exact, noisy
    exact = layer.edge_outputs(x).detach().numpy().reshape(-1)
    e01, e10 = noise_model_readout(fake._get_noise_model_from_backend_v2(), [0, 1, 3, 4])  # the sampler's rates
    slot = np.arange(exact.size) % 4
    mean = (e10 - e01)[slot] + exact * (1 - e01 - e10)[slot]
    for product in (True, False):
        layer.set_evaluator("qiskit", backend=fake, pack="auto", initial_layout=[0, 1, 3, 4], shots=shots, seed=7,
                            product_simulation=product)
        est = layer.edge_outputs(x).detach().numpy().reshape(-1)
        z = (est - mean) / np.sqrt((1 - mean**2) / shots)
        assert abs(z.mean()) < 5 / math.sqrt(z.size) and 0.7 < z.std() < 1.3, (product, z.mean(), z.std())


def test_multi_qubit_noise_falls_back_to_aer():
    """A correlated readout error leaves the product picture: the evaluator runs Aer itself."""
    from qiskit_aer.noise import NoiseModel, ReadoutError, depolarizing_error

    model = NoiseModel()
    model.add_all_qubit_quantum_error(depolarizing_error(0.02, 1), ["rx", "ry", "rz", "h"])
    layer = _layer(1, 1, 1)
    layer.set_evaluator("qiskit", backend=AerSimulator(noise_model=model, max_parallel_threads=1), pack=2)
    layer.edge_outputs(_inputs(2, 1))
    assert layer.get_evaluator().simulated_by == "qubit by qubit"
    model.add_readout_error(ReadoutError([[0.9, 0.05, 0.05, 0], [0.05, 0.9, 0, 0.05], [0.05, 0, 0.9, 0.05],
                                          [0, 0.05, 0.05, 0.9]]), [0, 1])
    layer.set_evaluator("qiskit", backend=AerSimulator(noise_model=model, max_parallel_threads=1), pack=2)
    layer.edge_outputs(_inputs(2, 1))
    assert layer.get_evaluator().simulated_by == "backend"


# ------------------------------------------------------------------------------ job faults
class _StubEstimator:
    """An EstimatorV2 stand-in whose jobs return given values (or hang / fail), recording cancels."""

    def __init__(self, values, hang: bool = False, fail_first: bool = False):
        from qiskit.primitives import BaseEstimatorV2

        BaseEstimatorV2.register(type(self))
        self.values, self.hang, self.fail_first, self.cancelled, self.jobs = values, hang, fail_first, [], 0
        self.options = type("Options", (), {})()

    def run(self, pubs, precision=None):
        stub, n = self, self.jobs
        self.jobs += 1

        class Job:
            def job_id(self):
                return f"stub-{n}"

            def status(self):
                return "RUNNING"

            def cancel(self):
                stub.cancelled.append(n)

            def result(self):
                if stub.hang:
                    import time

                    time.sleep(30)
                if stub.fail_first and n == 0:
                    raise RuntimeError("job 0 failed on the device")
                def data(pub):  # evs of shape (parameter sets..., observables)
                    shape = (*np.shape(pub[2])[:-1], len(pub[1])) if len(pub) > 2 else (len(pub[1]),)
                    return type("R", (), {"data": type("D", (), {"evs": np.full(shape, stub.values(n))})()})()

                return [data(pub) for pub in pubs]

        return Job()


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_non_finite_estimator_values_raise(value):
    layer = _layer(1, 1, 1)
    layer._evaluator = QiskitEvaluator(_StubEstimator(lambda n: value))
    with pytest.raises(QiskitJobError, match=r"forward job stub-0 .*1 non-finite values \(NaN or \+-inf\)"):
        layer.edge_outputs(_inputs(1, 1))


def test_nan_from_the_parameter_shift_job_never_reaches_grad():
    layer = _layer(1, 1, 1)
    layer._evaluator = QiskitEvaluator(_StubEstimator(lambda n: 0.5 if n == 0 else math.nan))
    y = layer(_inputs(2, 1))
    with pytest.raises(QiskitJobError, match=r"backward job stub-1 .*non-finite"):
        y.sum().backward()
    assert layer.theta.grad is None and all(p.grad is None or torch.isfinite(p.grad).all() for p in layer.parameters())


def test_a_failed_split_job_cancels_the_others():
    stub = _StubEstimator(lambda n: 0.1, fail_first=True)
    layer = _layer(1, 1, 1)
    layer._evaluator = QiskitEvaluator(stub, max_circuits_per_job=1)
    with pytest.raises(QiskitJobError, match=r"job stub-0 .*job 0 failed on the device\. 2 other job\(s\) .*cancelled"):
        layer.edge_outputs(_inputs(3, 1))
    assert stub.cancelled == [1, 2]


def test_job_timeout_cancels_and_raises():
    stub = _StubEstimator(lambda n: 0.1, hang=True)
    layer = _layer(1, 1, 1)
    layer._evaluator = QiskitEvaluator(stub, job_timeout=0.2)
    with pytest.raises(QiskitJobError, match=r"TimeoutError: no result within job_timeout=0.2 s"):
        layer.edge_outputs(_inputs(1, 1))
    assert stub.cancelled == [0]
    with pytest.raises(ValueError, match=r"`job_timeout` must be a number of seconds > 0 or None; got 0"):
        QiskitEvaluator(job_timeout=0)


def test_a_callback_raising_on_done_keeps_the_result():
    def callback(event, info):
        if event == "done":
            raise KeyError("bookkeeping bug")

    layer = _layer(1, 1, 1)
    x = _inputs(2, 1)
    ref = layer.edge_outputs(x)
    layer.set_evaluator("qiskit", threads=1, job_callback=callback)
    with pytest.warns(RuntimeWarning, match=r"job_callback raised on 'done' for job local-product-\d+: KeyError"):
        f = layer.edge_outputs(x)
    torch.testing.assert_close(f, ref, rtol=0, atol=1e-12)


def test_a_singular_readout_calibration_raises():
    with pytest.raises(ValueError, match=r"readout calibration is singular: 1 - e01 - e10 = \[0.0\]"):
        readout_correct(np.array([0.2]), np.array([0.5]), np.array([0.5]))
    # through an estimator whose calibration circuits read 0 for |0> and |1> alike (e10 = 1)
    layer = _layer(1, 1, 1)
    layer._evaluator = QiskitEvaluator(_StubEstimator(lambda n: 1.0), mitigation={"readout": True})
    with pytest.raises(ValueError, match=r"readout calibration is singular"):
        layer.edge_outputs(_inputs(1, 1))


# ------------------------------------------------------------------------------ tiling general circuits
def _bell():
    from qiskit import QuantumCircuit

    qc = QuantumCircuit(2, 2)
    qc.h(0)
    qc.cx(0, 1)
    qc.measure([0, 1], [0, 1])
    return qc


def _ghz3():
    from qiskit import QuantumCircuit

    qc = QuantumCircuit(3, 3)
    qc.h(0)
    qc.cx(0, 1)
    qc.cx(1, 2)
    qc.measure(range(3), range(3))
    return qc


def test_tiled_circuits_land_on_disjoint_connected_good_regions():
    from qkan.simulators.hardware.layout import auto_qubits
    from qkan.simulators.hardware.tiling import tile_circuits

    fake = FakeSherbrooke()
    circuits = [_bell(), _ghz3(), _bell(), _bell()]
    tiling = tile_circuits(circuits, fake, seed=0)
    edges = {tuple(sorted(e)) for e in fake.target.build_coupling_map().get_edges()}
    good = set(auto_qubits(fake.target, 1))
    used = [q for region in tiling.regions for q in region]
    assert len(used) == len(set(used)) == 9 and set(used) <= good
    for circuit, region in zip(circuits, tiling.regions):  # every two-qubit gate on a coupler of its region
        for inst in circuit.data:
            if inst.operation.num_qubits == 2:
                a, b = (region[circuit.find_bit(q).index] for q in inst.qubits)
                assert tuple(sorted((a, b))) in edges
    with pytest.raises(ValueError, match=r"circuit \d+ \(3 qubits\) does not fit the \d+ free well-calibrated qubits"):
        tile_circuits([_ghz3()] * 40, fake)


def test_tiled_counts_are_distributed_as_separate_runs():
    """FakeManilaV2 noise: two Bell circuits tiled in one job against each run alone on its region
    (two-sample chi-square over the 4 outcomes, 3 degrees of freedom)."""
    from qiskit.primitives import BackendSamplerV2
    from qiskit.transpiler import generate_preset_pass_manager

    from qkan.simulators.hardware.tiling import run_tiled, tile_circuits

    fake, shots = FakeManilaV2(), 8000
    circuits = [_bell(), _bell()]
    tiled = run_tiled(circuits, fake, shots=shots, seed=1, max_readout_error=0.05)
    regions = tile_circuits(circuits, fake, seed=1, max_readout_error=0.05).regions
    for counts, region in zip(tiled, regions):
        isa = generate_preset_pass_manager(optimization_level=1, backend=fake, initial_layout=list(region),
                                           seed_transpiler=1).run(_bell())
        alone = BackendSamplerV2(backend=fake, options={"default_shots": shots, "seed_simulator": 2}).run(
            [isa]).result()[0].data.c.get_counts()
        keys = ["00", "01", "10", "11"]
        a, b = np.array([counts.get(k, 0) for k in keys]), np.array([alone.get(k, 0) for k in keys])
        assert a.sum() == b.sum() == shots and a[0] + a[3] > 0.8 * shots  # mostly Bell outcomes
        pooled = (a + b) / (2 * shots)
        chi2 = sum(((x - shots * pooled) ** 2 / (shots * pooled)).sum() for x in (a, b))
        assert chi2 < 25, (counts, alone)  # chi2(3) exceeds 25 with probability 2e-5


def test_local_jobs_are_split_so_the_progress_bar_moves():
    """Without max_circuits_per_job a local simulation runs in ~20 jobs of >= 32 packed rows when the
    bar is on (one job when it is off, and real backends always get one)."""
    layer = _layer(4, 4, 3, encoding="fixed")
    x = _inputs(640, 4)  # 10,240 edge values: 160 packed rows of 64
    for progress, jobs in ((True, 5), (False, 1)):
        layer.set_evaluator("qiskit", shots=256, seed=1, threads=1, pack="auto", product_simulation=False, progress=progress)
        layer.edge_outputs(x)
        ev = layer.get_evaluator()
        assert ev.jobs_submitted == jobs and ev.circuits_submitted == 160

"""KANQAS circuits on backends (qkan.kanqas.hardware): fidelity and energy with error bars.

References: the noiseless statevector (qiskit's Statevector, independent of the package's
simulator) and Aer's density matrix of the same transpiled circuit under the fake backend's own
noise model (exact noisy values, no readout error). Fixed seeds; bounds in standard errors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("qiskit_aer")

from qiskit.quantum_info import Operator, Statevector  # noqa: E402
from qiskit.transpiler import generate_preset_pass_manager  # noqa: E402
from qiskit_aer import AerSimulator  # noqa: E402
from qiskit_ibm_runtime.fake_provider import FakeManilaV2  # noqa: E402

from qkan.kanqas.circuit import Circuit  # noqa: E402
from qkan.kanqas.hardware import estimate_observable, run_on_backend  # noqa: E402
from qkan.kanqas.state_prep import StatePrep  # noqa: E402


def _random_circuit(n: int, seed: int) -> Circuit:
    rng = np.random.default_rng(seed)
    c = Circuit(n)
    for _ in range(3 * n):
        kind = rng.integers(4)
        q = int(rng.integers(n))
        if kind == 0 and n > 1:
            c.append("CNOT", (q, (q + 1 + int(rng.integers(n - 1))) % n))
        elif kind == 1:
            c.append(["H", "T", "X"][int(rng.integers(3))], (q,))
        else:
            c.append(["RX", "RY", "RZ"][int(rng.integers(3))], (q,), float(rng.uniform(-3, 3)))
    return c


def _hermitian(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(2**n, 2**n)) + 1j * rng.normal(size=(2**n, 2**n))
    return (a + a.conj().T) / 4


def _qiskit_expectation(circuit: Circuit, observable: np.ndarray) -> float:
    """<O> from qiskit's Statevector (qubit 0 least significant: our wire order reversed)."""
    return float(np.real(Statevector(circuit.to_qiskit()).expectation_value(Operator(observable).reverse_qargs())))


def test_noiseless_values_match_qiskit_statevector():
    c, o = _random_circuit(3, 0), _hermitian(3, 1)
    est = estimate_observable(c, o, AerSimulator(), shots=100, seed=0)
    assert est.noiseless == pytest.approx(_qiskit_expectation(c, o), abs=1e-10)


def test_shot_estimates_are_unbiased_with_honest_error_bars():
    """Random 3-qubit circuits and observables (X, Y and Z bases) on ideal Aer: z-scores of 8 seeds."""
    z = []
    for seed in range(8):
        c, o = _random_circuit(3, seed), _hermitian(3, 100 + seed)
        est = estimate_observable(c, o, AerSimulator(), shots=4000, seed=seed, readout_mitigation=False)
        z.append((est.value - _qiskit_expectation(c, o)) / est.stderr)
    z = np.array(z)
    assert np.all(np.abs(z) < 5) and 0.1 < np.mean(z**2) < 3.5, z


def test_ideal_bell_and_a_wrong_circuit():
    task = StatePrep("bell")
    est = task.reference_circuit().on_backend(task, AerSimulator(), shots=2000, seed=1)
    assert est.value == pytest.approx(1.0, abs=1e-9) and est.quantity == "fidelity"
    assert est.circuits == 3 + 2  # XX, YY, ZZ bases (the Bell projector is (II + XX - YY + ZZ) / 4) + calibration
    wrong = Circuit(2)
    wrong.append("H", (0,))  # (|00> + |10>)/sqrt2: overlap 1/2 with the Bell state, fidelity 1/4
    est = run_on_backend(wrong, task, AerSimulator(), shots=4000, seed=2)
    assert est.noiseless == pytest.approx(0.25) and abs(est.value - 0.25) < 5 * est.stderr


def _noisy_exact(circuit: Circuit, observable: np.ndarray, fake, seed: int) -> float:
    """Tr(rho O) of the transpiled circuit from Aer's density matrix under the fake's noise model."""
    isa = generate_preset_pass_manager(optimization_level=1, backend=fake, seed_transpiler=seed).run(circuit.to_qiskit())
    final = list(isa.layout.final_index_layout()[: circuit.n_qubits])
    isa.save_density_matrix(qubits=final)
    sim = AerSimulator(noise_model=fake._get_noise_model_from_backend_v2(), method="density_matrix")
    rho = sim.run(isa).result().data(0)["density_matrix"]
    return float(np.real(np.trace(rho.data @ Operator(observable).reverse_qargs().data)))


def test_ghz_fidelity_on_a_fake_backend_is_readout_mitigated():
    """FakeManilaV2, GHZ-3: the mitigated fidelity matches the exact noisy fidelity (gate noise only)
    within 5 standard errors plus the calibration's shot noise; raw readout lowers it."""
    fake, task = FakeManilaV2(), StatePrep("ghz", 3)
    circuit = task.reference_circuit()
    est = run_on_backend(circuit, task, fake, shots=20_000, seed=3)
    t = task.target.numpy()
    exact = _noisy_exact(circuit, np.outer(t, t.conj()), fake, 3)
    assert 0.9 < exact < 0.999
    assert abs(est.value - exact) < 5 * est.stderr + 0.01, (est, exact)
    assert est.raw < est.value - 5 * est.raw_stderr  # readout errors cost fidelity; mitigation returns it
    assert len(set(est.physical_qubits)) == 3


def test_h2_energy_on_a_fake_backend():
    from qkan.kanqas.ground_state import GroundState

    task = GroundState("h2")
    c = Circuit(4, initial_bits=task.initial_bits)
    c.append("RY", (2,))
    for target in (3, 0, 1):
        c.append("CNOT", (2, target))
    task.optimize(c, rng=np.random.default_rng(0))
    fake = FakeManilaV2()
    est = c.on_backend(task, fake, shots=8000, seed=4)
    assert est.quantity == "energy" and est.noiseless == pytest.approx(task.exact_energy, abs=1e-6)
    exact = _noisy_exact(c, task.hamiltonian.numpy(), fake, 4)
    assert abs(est.value - exact) < 5 * est.stderr + 0.02, (est, exact)


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda: estimate_observable("circuit", np.eye(2), AerSimulator()), TypeError,
         r"`circuit` must be qkan.kanqas.circuit.Circuit; got str"),
        (lambda: estimate_observable(Circuit(1), np.eye(2), "aer"), TypeError,
         r"`backend` must be qiskit.providers.backend.BackendV2; got str"),
        (lambda: estimate_observable(Circuit(1), np.eye(4), AerSimulator()), ValueError,
         r"`observable` must be a Hermitian \(2, 2\) matrix for 1 qubits; got shape \(4, 4\)"),
        (lambda: estimate_observable(Circuit(1), np.eye(2), AerSimulator(), shots=0), ValueError, r"`shots` must be"),
        (lambda: estimate_observable(Circuit(2), np.eye(4), AerSimulator(), initial_layout=[1, 1]), ValueError,
         r"`initial_layout` must list 2 distinct physical qubits"),
        (lambda: run_on_backend(Circuit(1), object(), AerSimulator()), TypeError, r"`task` must have a target state"),
    ],
)
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_singular_readout_calibration_raises():
    from qiskit_aer.noise import NoiseModel, ReadoutError

    model = NoiseModel()
    model.add_all_qubit_readout_error(ReadoutError([[0.2, 0.8], [0.8, 0.2]]))  # flips more often than not
    with pytest.raises(ValueError, match=r"readout calibration is singular"):
        estimate_observable(Circuit(1), np.diag([1.0, -1.0]), AerSimulator(noise_model=model), shots=500, seed=0)
    assert math.isfinite(estimate_observable(Circuit(1), np.diag([1.0, -1.0]), AerSimulator(noise_model=model),
                                             shots=500, seed=0, readout_mitigation=False).value)


def test_noise_from_a_backend_matches_its_calibration():
    """Noise-aware search: the env's channels carry the backend's median gate infidelities."""
    import numpy as np
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    from qkan.kanqas import CircuitEnv
    from qkan.kanqas.statevector import Noise

    backend = FakeManilaV2()
    target = backend.target
    r1 = np.median([p.error for name in ("sx", "x") for q, p in target[name].items() if p is not None and p.error is not None])
    r2 = np.median([p.error for q, p in target["cx"].items() if p is not None and p.error is not None])
    noise = Noise.from_backend(backend)
    assert noise.p1 == pytest.approx(1.5 * r1) and noise.p2 == pytest.approx(4 / 3 * r2)
    assert 0 < noise.p1 < 0.01 and 0 < noise.p2 < 0.1
    env = CircuitEnv("bell", noise=backend)
    assert env.noise == noise
    env.reset(seed=0)
    for gate in (("H", (0,)), ("CNOT", (0, 1))):  # the textbook Bell circuit, under the backend's channels
        env.step(env.actions.index(gate))
    assert 0.9 < 1 - env.error < 1  # noisy, and close to the backend's own Bell fidelity
    with pytest.raises(TypeError, match="`backend` must be a Qiskit backend with a `target`"):
        Noise.from_backend(object())
    with pytest.raises(ValueError, match="no calibrated"):
        Noise.from_backend(backend, qubits=[99])

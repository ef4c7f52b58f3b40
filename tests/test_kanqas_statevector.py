"""KANQAS small-register simulator vs qiskit.quantum_info and Aer (statevector, noisy density matrix)."""

import numpy as np
import pytest
import torch

from qkan.kanqas.circuit import Circuit
from qkan.kanqas.statevector import Noise, apply_gate, expectation, fidelity, initial_state, run

qi = pytest.importorskip("qiskit.quantum_info")
noise_mod = pytest.importorskip("qiskit_aer.noise")


def _random_circuit(n: int, n_gates: int, seed: int) -> Circuit:
    rng = np.random.default_rng(seed)
    circuit = Circuit(n)
    for _ in range(n_gates):
        kind = rng.integers(3)
        if kind == 0:
            c, t = rng.choice(n, 2, replace=False)
            circuit.append("CNOT", (int(c), int(t)))
        elif kind == 1:
            circuit.append(str(rng.choice(["X", "Y", "Z", "H", "T"])), (int(rng.integers(n)),))
        else:
            circuit.append(str(rng.choice(["RX", "RY", "RZ"])), (int(rng.integers(n)),), rng.uniform(-3, 3))
    return circuit


def _to_qiskit_order(n: int) -> np.ndarray:
    """Index map: qiskit basis index (qubit 0 least significant) -> ours (wire 0 most significant)."""
    return np.arange(2**n).reshape([2] * n).transpose(list(range(n))[::-1]).reshape(-1)


def _qiskit_noisy_dm(qc, n: int, p1: float, p2: float) -> np.ndarray:
    bit_flip = qi.Kraus(noise_mod.pauli_error([("X", p1), ("I", 1 - p1)]))
    depol = qi.Kraus(noise_mod.depolarizing_error(p2, 2))
    dm = qi.DensityMatrix.from_label("0" * n)
    for inst in qc.data:
        qubits = [qc.find_bit(q).index for q in inst.qubits]
        dm = dm.evolve(inst.operation, qubits)
        dm = dm.evolve(depol if len(qubits) == 2 else bit_flip, qubits)
    return dm.data


@pytest.mark.parametrize("n, seed", [(1, 0), (2, 1), (3, 2), (5, 3)])
def test_statevector_matches_qiskit(n, seed):
    circuit = _random_circuit(n, 25, seed) if n > 1 else Circuit(1)
    if n == 1:
        for name in ["H", "T", "RY", "Y", "RX", "Z", "RZ", "X"]:
            circuit.append(name, (0,), 0.7 if name.startswith("R") else None)
    ours = run(circuit)[0].numpy()
    perm = _to_qiskit_order(n)
    expected = qi.Statevector(circuit.to_qiskit()).data
    np.testing.assert_allclose(ours[perm], expected, atol=1e-12)


@pytest.mark.parametrize("n, p1, p2, seed", [(2, 0.3, 0.2, 0), (3, 0.05, 0.1, 1), (4, 0.1, 0.0, 2), (3, 0.0, 0.3, 3)])
def test_noisy_density_matrix_matches_qiskit_channels(n, p1, p2, seed):
    circuit = _random_circuit(n, 20, seed)
    rho = run(circuit, noise=Noise(p1, p2))[0].numpy()
    perm = _to_qiskit_order(n)
    expected = _qiskit_noisy_dm(circuit.to_qiskit(), n, p1, p2)
    np.testing.assert_allclose(rho[np.ix_(perm, perm)], expected, atol=1e-12)
    assert abs(np.trace(rho) - 1) < 1e-12


def test_noisy_density_matrix_matches_aer():
    aer = pytest.importorskip("qiskit_aer")
    n, p1, p2 = 3, 0.1, 0.15
    circuit = _random_circuit(n, 18, 7)
    model = noise_mod.NoiseModel()
    model.add_all_qubit_quantum_error(noise_mod.pauli_error([("X", p1), ("I", 1 - p1)]),
                                      ["x", "y", "z", "h", "t", "rx", "ry", "rz"])
    model.add_all_qubit_quantum_error(noise_mod.depolarizing_error(p2, 2), ["cx"])
    qc = circuit.to_qiskit()
    qc.save_density_matrix()
    sim = aer.AerSimulator(method="density_matrix", noise_model=model)
    from qiskit import transpile

    result = sim.run(transpile(qc, sim, optimization_level=0)).result()
    expected = np.asarray(result.data()["density_matrix"])
    rho = run(circuit, noise=Noise(p1, p2))[0].numpy()
    perm = _to_qiskit_order(n)
    np.testing.assert_allclose(rho[np.ix_(perm, perm)], expected, atol=1e-10)


def test_density_without_noise_equals_pure_state_and_batches():
    circuit = _random_circuit(3, 15, 4)
    psi = run(circuit)
    rho = run(circuit, density=True)
    np.testing.assert_allclose(rho[0].numpy(), np.outer(psi[0].numpy(), psi[0].numpy().conj()), atol=1e-12)
    angles = torch.rand(4, circuit.n_params, dtype=torch.float64)
    batch = run(circuit, angles)
    assert batch.shape == (4, 8)
    for b in range(4):
        np.testing.assert_allclose(batch[b].numpy(), run(circuit, angles[b])[0].numpy(), atol=1e-12)
    ham = torch.randn(8, 8, dtype=torch.float64)
    ham = ham + ham.T
    np.testing.assert_allclose(expectation(psi, ham).numpy(), expectation(rho, ham).numpy(), atol=1e-12)
    target = psi[0]
    assert abs(float(fidelity(psi, target)[0]) - 1) < 1e-12
    assert abs(float(fidelity(rho, target)[0]) - 1) < 1e-12


def test_noisy_bell_fidelity_cap():
    """One CNOT with depolarising p2 caps the Bell fidelity at 1 - p2 + p2/4 (bit flip after H is harmless)."""
    state = initial_state(2, density=True)
    noise = Noise(0.3, 0.2)
    state = apply_gate(state, "H", (0,), noise=noise)
    state = apply_gate(state, "CNOT", (0, 1), noise=noise)
    bell = torch.tensor([1, 0, 0, 1], dtype=torch.complex128) / 2**0.5
    assert abs(float(fidelity(state, bell)[0]) - 0.85) < 1e-12


def test_simulator_validation():
    with pytest.raises(ValueError, match="`p1` must be a number in \\[0, 1\\]"):
        Noise(1.5, 0.0)
    with pytest.raises(ValueError, match="`n` must be an int in"):
        initial_state(9)
    with pytest.raises(ValueError, match="`noise` needs a density-matrix state"):
        apply_gate(initial_state(2), "H", (0,), noise=Noise(0.1, 0.1))


@pytest.mark.parametrize("n, seed", [(2, 0), (4, 1), (6, 2)])
def test_adjoint_energy_and_gradient_match_autograd(n, seed):
    from qkan.kanqas.statevector import AdjointEnergy, energy_and_gradient

    rng = np.random.default_rng(seed)
    circuit = _random_circuit(n, 16, seed)
    circuit.initial_bits = tuple(int(b) for b in rng.integers(0, 2, n))
    m = rng.normal(size=(2**n, 2**n)) + 1j * rng.normal(size=(2**n, 2**n))
    ham = torch.as_tensor(m + m.conj().T)  # a random Hermitian matrix (complex couplings)
    angles = torch.as_tensor(rng.normal(size=(3, circuit.n_params))).requires_grad_(True)
    reference = expectation(run(circuit, angles), ham)  # autograd through the torch simulator
    reference.sum().backward()
    energy, grad = energy_and_gradient(circuit, angles.detach().numpy(), ham.numpy())
    np.testing.assert_allclose(energy, reference.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(grad, angles.grad.numpy(), atol=1e-11)
    x = angles.detach()[:1].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: AdjointEnergy.apply(a, circuit, ham.numpy()), (x,))

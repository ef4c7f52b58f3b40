"""KANQAS circuits on Aer noise models, fake and IBM backends: fidelity or energy with error bars.

A found ``Circuit`` is transpiled once for the backend (qiskit's noise-aware placement, or an
``initial_layout``), then measured in the few qubit-wise-commuting Pauli bases of the
observable, every basis with ``shots`` shots, in one sampler job together with two readout
calibration circuits (all |0>, all |1>) on the same physical qubits:

- the observable O is a dense matrix (wire 0 = most significant bit): a Hamiltonian (energy)
  or the projector |t><t| on a target state (fidelity F = <t| rho |t>), expanded in Paulis
  O = sum_P c_P P;
- basis b's outcome frequencies p_b (2^n) give sum_{P in b} c_P <P> = h_b . p_b with
  h_b(x) = sum_P c_P (-1)^{parity of x on P's support};
- readout mitigation inverts the tensor product M of the per-qubit 2x2 confusion matrices
  (rates from the calibration circuits): h_b . M^-1 p_b = (M^-T h_b) . p_b = g_b . p_b;
- the estimate sum_b g_b . p_b is linear in multinomial frequencies, so its shot variance is
  sum_b (g_b^2 . p_b - (g_b . p_b)^2) / shots (the calibration's own shot noise is not included).

Local backends (AerSimulator, fake backends) run through qiskit's BackendSamplerV2 (seeded);
other backends through qiskit-ibm-runtime's SamplerV2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from qkan._checks import check_bool, check_int, check_type, require
from qkan.kanqas.circuit import Circuit

__all__ = ["HardwareEstimate", "estimate_observable", "run_on_backend"]


@dataclass(frozen=True)
class HardwareEstimate:
    """An observable's value measured on a backend.

    Attributes:
        value, stderr: the estimate (readout-mitigated when asked) and its shot standard error.
        raw, raw_stderr: the same without readout mitigation.
        noiseless: the ideal circuit's exact value.
        quantity: "fidelity" or "energy" (or "observable").
        shots: shots per measured circuit; circuits: circuits executed (bases + calibration).
        physical_qubits: the physical qubit of each wire at measurement.
        backend: the backend's name.
    """

    value: float
    stderr: float
    raw: float
    raw_stderr: float
    noiseless: float
    quantity: str
    shots: int
    circuits: int
    physical_qubits: tuple[int, ...]
    backend: str

    @property
    def error(self) -> float:
        """value - noiseless."""
        return self.value - self.noiseless


def _pauli_groups(observable: np.ndarray) -> list[tuple[str, list[tuple[str, float]]]]:
    """Dense Hermitian (2^n, 2^n), wire 0 most significant -> [(basis per wire, [(label, c_P)])].

    Labels read wire 0 first; the basis of a wire is the Pauli its terms use there (Z for none).
    """
    from qiskit.quantum_info import Operator, SparsePauliOp

    n = int(round(math.log2(observable.shape[0])))
    # qiskit's matrices put qubit 0 last (least significant): its qubit n-1-w is our wire w, so
    # its label (qubit 0 rightmost) reads our wires left to right
    paulis = SparsePauliOp.from_operator(Operator(observable)).simplify(atol=1e-12)
    groups = []
    for group in paulis.group_commuting(qubit_wise=True):
        terms = [(label, float(np.real(c))) for label, c in group.to_list()]
        basis = "".join(next((t[0][w] for t in terms if t[0][w] != "I"), "Z") for w in range(n))
        groups.append((basis, terms))
    return groups


def _parities(n: int) -> np.ndarray:
    """(2^n, n) bits of each basis index, wire 0 most significant."""
    index = np.arange(2**n)
    return (index[:, None] >> (n - 1 - np.arange(n))[None, :]) & 1


def _measured(isa, n: int, basis: str | None, flip: bool = False):
    """The ISA circuit (or an empty one on its qubits) with basis changes and measurements of each wire.

    X: H = rz(pi/2) sx rz(pi/2); Y: H S^dag = rz(pi/2) sx (up to phases), in every IBM basis.
    """
    from qiskit import ClassicalRegister, QuantumCircuit

    physical = _final_qubits(isa, n)
    qc = isa.copy() if basis is not None else QuantumCircuit(*isa.qregs)
    creg = ClassicalRegister(n, "meas")
    qc.add_register(creg)
    for w, q in enumerate(physical):
        if flip:
            qc.x(q)
        if basis is not None and basis[w] in "XY":
            if basis[w] == "X":
                qc.rz(math.pi / 2, q)
            qc.sx(q)
            qc.rz(math.pi / 2, q)
        qc.measure(q, creg[w])
    return qc


def _final_qubits(isa, n: int) -> list[int]:
    """Physical qubit of each wire at the end of the ISA circuit."""
    return list(range(n)) if isa.layout is None else list(isa.layout.final_index_layout()[:n])


def estimate_observable(circuit: Circuit, observable: np.ndarray, backend, *, shots: int = 4000,
                        readout_mitigation: bool = True, initial_layout: list[int] | None = None,
                        optimization_level: int = 1, seed: int | None = None,
                        quantity: str = "observable") -> HardwareEstimate:
    """Measure <O> of a circuit's state on a backend, with readout mitigation and error bars.

    Args:
        circuit: a KANQAS Circuit (its current angles).
        observable: (2^n, 2^n) Hermitian matrix, wire 0 = most significant bit.
        backend: an AerSimulator (ideal, a noise model, or from_backend), a fake backend or an
            IBM backend.
        shots: shots per measured circuit (1 to 1e7).
        readout_mitigation: invert per-qubit readout errors calibrated in the same job.
        initial_layout: physical qubits for wires 0..n-1 (None: qiskit's noise-aware placement).
        optimization_level: preset pass manager level 0..3.
        seed: seeds the transpiler and local simulators.
        quantity: a label for the result.
    Returns:
        HardwareEstimate.
    """
    require("qiskit", "qiskit", "running KANQAS circuits on backends")
    from qiskit.providers import BackendV2
    from qiskit.transpiler import generate_preset_pass_manager

    from qkan.kanqas.statevector import run
    from qkan.simulators.hardware.executors import sampler_for

    check_type("circuit", circuit, Circuit)
    check_type("backend", backend, BackendV2)
    check_int("shots", shots, 1, high=10**7)
    check_bool("readout_mitigation", readout_mitigation)
    check_int("optimization_level", optimization_level, low=0, high=3)
    check_int("seed", seed, 0, allow_none=True)
    n = circuit.n_qubits
    observable = np.asarray(observable, dtype=complex)
    if observable.shape != (2**n, 2**n) or not np.allclose(observable, observable.conj().T, atol=1e-10):
        raise ValueError(f"`observable` must be a Hermitian ({2**n}, {2**n}) matrix for {n} qubits; "
                         f"got shape {observable.shape}")
    if initial_layout is not None:
        check_type("initial_layout", initial_layout, (list, tuple))
        if len(initial_layout) != n or len(set(initial_layout)) != n:
            raise ValueError(f"`initial_layout` must list {n} distinct physical qubits; got {list(initial_layout)}")

    pm = generate_preset_pass_manager(optimization_level=optimization_level, backend=backend,
                                      initial_layout=None if initial_layout is None else list(initial_layout),
                                      seed_transpiler=seed)
    isa = pm.run(circuit.to_qiskit())
    groups = _pauli_groups(observable)
    circuits = [_measured(isa, n, basis) for basis, _ in groups]
    if readout_mitigation:
        circuits += [_measured(isa, n, None), _measured(isa, n, None, flip=True)]
    result = sampler_for(backend, shots, seed).run(circuits).result()
    freqs = []
    bits = _parities(n)
    for pub in result:
        counts = pub.data.meas.get_counts()
        p = np.zeros(2**n)
        for key, c in counts.items():
            p[int(key[::-1], 2)] += c  # clbit w is wire w; reversed, wire 0 is the most significant bit
        freqs.append(p / p.sum())

    if readout_mitigation:
        zero, one = freqs[-2], freqs[-1]
        e01 = bits.T @ zero  # (n,) P(read 1 | prepared 0) per wire
        e10 = (1 - bits).T @ one  # P(read 0 | prepared 1)
        confusion = np.ones((1, 1))
        for w in range(n):  # rows: read, columns: prepared; wire 0 outermost
            confusion = np.kron(confusion, np.array([[1 - e01[w], e10[w]], [e01[w], 1 - e10[w]]]))
        if np.any(1 - e01 - e10 < 0.01):
            raise ValueError(f"readout calibration is singular (1 - e01 - e10 = {np.round(1 - e01 - e10, 4).tolist()}); "
                             "retry with readout_mitigation=False or other qubits")

    def estimate(mitigate: bool) -> tuple[float, float]:
        value = var = 0.0
        for (basis, terms), p in zip(groups, freqs):
            h = np.zeros(2**n)
            for label, c in terms:
                support = [w for w in range(n) if label[w] != "I"]
                h += c * (-1.0) ** bits[:, support].sum(axis=1)
            g = np.linalg.solve(confusion.T, h) if mitigate else h
            mean = float(g @ p)
            value += mean
            var += max(float(g**2 @ p) - mean**2, 0.0) / shots
        return value, math.sqrt(var)

    raw, raw_err = estimate(False)
    value, err = estimate(True) if readout_mitigation else (raw, raw_err)
    psi = run(circuit)[0].numpy()
    noiseless = float(np.real(psi.conj() @ observable @ psi))
    return HardwareEstimate(value, err, raw, raw_err, noiseless, quantity, shots, len(circuits),
                            tuple(int(q) for q in _final_qubits(isa, n)), str(getattr(backend, "name", backend)))


def run_on_backend(circuit: Circuit, task, backend, **options) -> HardwareEstimate:
    """A task's figure of merit for `circuit` on `backend`: StatePrep -> fidelity, GroundState -> energy.

    Args:
        circuit: a KANQAS Circuit (e.g. ``agent.best_circuit()``).
        task: a ``kanqas.tasks.StatePrep`` or ``GroundState`` (or any task with ``target`` or
            ``hamiltonian``).
        backend, options: as for estimate_observable.
    """
    if hasattr(task, "target"):
        t = np.asarray(task.target, dtype=complex)
        return estimate_observable(circuit, np.outer(t, t.conj()), backend, quantity="fidelity", **options)
    if hasattr(task, "hamiltonian"):
        return estimate_observable(circuit, np.asarray(task.hamiltonian), backend, quantity="energy", **options)
    raise TypeError(f"`task` must have a target state (StatePrep) or a hamiltonian (GroundState); got {type(task).__name__}")

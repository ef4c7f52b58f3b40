"""How packed circuits are executed: Aer exact-plus-binomial, or an EstimatorV2 primitive.

Both return, per job, raw values (repeats, n, k) for n packed rows of k qubits and the
readout rates (e01, e10), each (k,), that mitigation inverts.

- AerExecutor: Aer computes exact expectations (save_expectation_value, no sampling) of
  every packed row in one job: the ideal packed circuit with matrix_product_state (a product
  state: bond dimension 1 whatever k), or, under a noise model, each packed qubit's circuit with
  density_matrix (exact noisy value; Aer's noise models act qubit by qubit, so a packed product
  circuit's <Z_q> is that of qubit q alone). Shots are drawn as binomials with the noise
  model's readout error folded in (shots.binomial_estimates).
- EstimatorExecutor: an EstimatorV2 (qiskit-ibm-runtime on fake or IBM backends, or the
  user's) runs one PUB per chunk with an observables array (Z on each packed qubit); with
  readout mitigation two calibration PUBs (all |0>, all |1>) ride in the same job.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from qkan.simulators.hardware.jobs import Task
from qkan.simulators.hardware.mitigation import fold
from qkan.simulators.hardware.packing import Packed
from qkan.simulators.hardware.shots import binomial_estimates, noise_model_readout

__all__ = ["AerExecutor", "EstimatorExecutor", "is_fake_backend", "sampler_for"]


def is_fake_backend(backend) -> bool:
    """True for qiskit-ibm-runtime fake backends (local, seedable)."""
    try:
        from qiskit_ibm_runtime.fake_provider.fake_backend import FakeBackendV2
    except ImportError:  # pragma: no cover
        return False
    return isinstance(backend, FakeBackendV2)


def sampler_for(backend, shots: int, seed: int | None):
    """A SamplerV2 for `backend`: qiskit's BackendSamplerV2 on local backends (Aer, fake; seeded),
    qiskit-ibm-runtime's SamplerV2 otherwise."""
    from qiskit_aer import AerSimulator

    if isinstance(backend, AerSimulator) or is_fake_backend(backend):
        from qiskit.primitives import BackendSamplerV2

        options = {"default_shots": shots}
        if seed is not None:
            options["seed_simulator"] = seed
        return BackendSamplerV2(backend=backend, options=options)
    from qkan._checks import require

    runtime = require("qiskit_ibm_runtime", "qiskit", "running on IBM backends")
    sampler = runtime.SamplerV2(mode=backend)
    sampler.options.default_shots = shots
    return sampler


class AerExecutor:
    """Exact (noisy) expectations on an AerSimulator; shots (if any) drawn from `rng`."""

    def __init__(self, simulator, rng: np.random.Generator, shots: int | None) -> None:
        self.simulator = simulator
        self.rng = rng
        self.shots = shots
        model = simulator.options.noise_model
        self.noise_model = model if model is not None and not model.is_ideal() else None
        self._circuits: dict = {}

    def rates(self, packed: Packed) -> tuple[np.ndarray, np.ndarray]:
        """Readout rates on the packed qubits (zero without shots: exact values have no readout)."""
        if self.shots is None:
            return np.zeros(packed.k), np.zeros(packed.k)
        return noise_model_readout(self.noise_model, list(packed.physical))

    def _aer_circuits(self, packed: Packed, scale: int) -> list:
        """The circuits one job runs: the packed one (ideal) or one per packed qubit (noisy)."""
        key = (id(packed), scale)
        if key not in self._circuits:
            from qiskit import QuantumCircuit
            from qiskit.quantum_info import Pauli

            folded = fold(packed.circuit, scale)
            if self.noise_model is None:
                circuit = folded.copy()
                for q, phys in enumerate(packed.physical):
                    circuit.save_expectation_value(Pauli("Z"), [phys], label=f"z{q}")
                circuits = [circuit]
            else:
                circuits = []
                for phys in packed.physical:
                    one = QuantumCircuit(*folded.qregs)
                    for instruction in folded.data:
                        qubits = [folded.find_bit(b).index for b in instruction.qubits]
                        if qubits == [phys]:
                            one.append(instruction)
                    one.save_expectation_value(Pauli("Z"), [phys], label="z")
                    circuits.append(one)
            self._circuits[key] = (packed, circuits)  # keeps `packed` alive, so its id stays unique
        return self._circuits[key][1]

    def task(self, packed: Packed, scale: int, rows: np.ndarray, repeats: int) -> Task:
        """A job computing rows (n, k P) exactly at noise `scale`; collect -> ((repeats, n, k), rates)."""
        circuits = self._aer_circuits(packed, scale)
        binds = [{p: rows[:, p.index] for p in c.parameters} for c in circuits]
        method = "density_matrix" if self.noise_model is not None else (
            "matrix_product_state" if packed.k > 1 else "statevector")
        n, k = len(rows), packed.k
        e01, e10 = self.rates(packed)

        def collect(result) -> tuple:
            if not result.success:
                raise RuntimeError(f"Aer: {result.status}")
            if self.noise_model is None:
                exact = np.array([[result.data(i)[f"z{q}"] for q in range(k)] for i in range(n)], dtype=np.float64)
            else:
                exact = np.array([[result.data(q * n + i)["z"] for q in range(k)] for i in range(n)], dtype=np.float64)
            exact = exact.reshape(1, n, k)
            if self.shots is None:
                return exact, (e01, e10)
            return binomial_estimates(self.rng, np.repeat(exact, repeats, 0), self.shots, e01, e10), (e01, e10)

        return Task(lambda: self.simulator.run(circuits, parameter_binds=binds, method=method), collect, n * repeats)


class EstimatorExecutor:
    """Packed PUBs with an observables array through an EstimatorV2 (sampled on hardware)."""

    def __init__(self, estimator, precision: float | None, readout: bool, max_pub_size: int,
                 before_job: Callable[[], None]) -> None:
        self.estimator = estimator
        self.precision = precision
        self.readout = readout
        self.max_pub_size = max_pub_size
        self.before_job = before_job
        self._circuits: dict = {}

    def _prepared(self, packed: Packed, scale: int) -> tuple:
        """(folded circuit, its parameter columns, observables (k,), calibration circuits)."""
        key = (id(packed), scale)
        if key not in self._circuits:
            from qiskit import QuantumCircuit
            from qiskit.quantum_info import SparsePauliOp

            circuit = fold(packed.circuit, scale)
            n = circuit.num_qubits
            observables = [SparsePauliOp.from_sparse_list([("Z", [q], 1.0)], n) for q in packed.physical]
            zero, one = QuantumCircuit(*circuit.qregs), QuantumCircuit(*circuit.qregs)
            for q in packed.physical:
                one.x(q)
            self._circuits[key] = (packed, circuit, packed.columns(circuit), observables, zero, one)
        return self._circuits[key][1:]

    def task(self, packed: Packed, scale: int, rows: np.ndarray, repeats: int) -> Task:
        """A job of rows (n, k P) at noise `scale`, `repeats` times; collect -> ((repeats, n, k), rates)."""
        circuit, columns, observables, zero, one = self._prepared(packed, scale)
        values = np.tile(rows[:, columns], (repeats, 1))  # (repeats n, P_isa)
        size = self.max_pub_size
        pubs = [(circuit, observables, values[s : s + size, None, :]) for s in range(0, len(values), size)]
        if self.readout:
            pubs += [(zero, observables), (one, observables)]
        n, k = len(rows), packed.k

        def submit():
            self.before_job()
            return self.estimator.run(pubs) if self.precision is None else self.estimator.run(pubs, precision=self.precision)

        def collect(result) -> tuple:
            evs = [np.asarray(r.data.evs, dtype=np.float64).reshape(-1, k) for r in result]
            if self.readout:
                (z0,), (z1,), evs = evs[-2], evs[-1], evs[:-2]
                e01, e10 = (1 - z0) / 2, (1 + z1) / 2  # <Z> of |0> is 1 - 2 e01, of |1> is -1 + 2 e10
            else:
                e01 = e10 = np.zeros(k)
            z = np.concatenate(evs)
            if z.shape != (repeats * n, k):
                raise RuntimeError(f"the job returned {z.size} values for {repeats * n * k} expected")
            return z.reshape(repeats, n, k), (e01, e10)

        return Task(submit, collect, repeats * n + 2 * self.readout)

"""Packed circuits of one-qubit edges simulated qubit by qubit: the local simulator at the physics' cost.

A packed circuit is a tensor product of one-qubit circuits, one per physical qubit. When every
noise channel that reaches those gates acts on one qubit (Aer's device noise models: a
depolarizing and a thermal-relaxation error per one-qubit gate and qubit, a readout error per
qubit), the state stays a product state: each qubit's Bloch vector (1, x, y, z) moves by the
4x4 Pauli transfer matrices of its gates, each followed by its error's, and shots on different
qubits are independent. Qubit q's S-shot estimate is then 2 Binomial(S, p'_q) / S - 1 with p'_q
from its exact noisy <Z> and its readout error (hardware.shots): exactly the distribution of
sampling the packed circuit on Aer, at the cost of a few 4x4 products per gate, batched over
packed rows. ``ProductExecutor.unsupported`` says when this does not hold (a two-qubit error or
gate, a correlated readout error, a gate without a known rotation axis); the evaluator then
runs the backend's own simulator.
"""

from __future__ import annotations

import functools
import itertools
import weakref
from dataclasses import dataclass
from typing import Callable

import numpy as np

from qkan.simulators.hardware.jobs import Task
from qkan.simulators.hardware.mitigation import fold
from qkan.simulators.hardware.packing import Packed
from qkan.simulators.hardware.shots import binomial_estimates, noise_model_readout

__all__ = ["ProductExecutor", "unitary_ptm"]

_PAULIS = np.array([[[1, 0], [0, 1]], [[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]])
#: Bloch axis (1 x, 2 y, 3 z) of the parameterised rotations; p(a) is rz(a) up to a global phase
_AXES = {"rx": 1, "ry": 2, "rz": 3, "p": 3}
_IDS = itertools.count()
#: id(noise model) -> {(instruction, qubit): error PTM} (NoiseModel is not hashable)
_PTMS: dict[int, dict] = {}


def unitary_ptm(u: np.ndarray) -> np.ndarray:
    """(2, 2) unitary -> (4, 4) real Pauli transfer matrix R_ij = Tr(P_i U P_j U^dag) / 2 (I, X, Y, Z)."""
    return 0.5 * np.einsum("iab,bc,jcd,ad->ij", _PAULIS, u, _PAULIS, u.conj()).real


def _rotate(bloch: np.ndarray, axis: int, angle: np.ndarray) -> np.ndarray:
    """Rotate (n, 4) Bloch vectors about `axis` by (n,) angles (R_axis(a) = exp(-i a P / 2))."""
    a, b = {1: (2, 3), 2: (3, 1), 3: (1, 2)}[axis]  # the plane, in right-handed order
    c, s = np.cos(angle), np.sin(angle)
    out = bloch.copy()
    out[:, a] = c * bloch[:, a] - s * bloch[:, b]
    out[:, b] = s * bloch[:, a] + c * bloch[:, b]
    return out


@dataclass(frozen=True)
class _Rotation:
    """A rotation by scale * row[column] + offset, then the (4, 4) error `after` (None: none)."""

    axis: int
    column: int
    scale: float
    offset: float
    after: np.ndarray | None


class _Unsupported(Exception):
    """The circuit or noise model leaves the product-state picture (the reason is the message)."""


class _LocalJob:
    """A finished local computation with the job interface the evaluator reads (id, status, result)."""

    def __init__(self, values) -> None:
        self._values, self._id = values, f"local-product-{next(_IDS)}"

    def job_id(self) -> str:
        return self._id

    def status(self) -> str:
        return "DONE"

    def result(self, timeout: float | None = None):
        return self._values

    def cancel(self) -> None:
        return None


class ProductExecutor:
    """Exact noisy <Z> of each packed qubit from Pauli transfer matrices; shots as binomials from `rng`.

    Args:
        noise: returns the Aer NoiseModel or None (ideal); called once, at the first use.
        rng: the generator drawing the shots.
        shots: shots per value (None: exact values without readout error).
    """

    def __init__(self, noise: Callable[[], object], rng: np.random.Generator, shots: int | None) -> None:
        self._noise = noise
        self.rng = rng
        self.shots = shots
        self._programs: dict = {}

    @functools.cached_property
    def noise_model(self):
        """The noise model (None when ideal)."""
        model = self._noise()
        return model if model is not None and not model.is_ideal() else None

    # ---------------------------------------------------------------- noise
    def _error(self, name: str, qubit: int) -> np.ndarray | None:
        """(4, 4) PTM of the noise model's error after instruction `name` on `qubit`, or None."""
        model = self.noise_model
        if model is None:
            return None
        if id(model) not in _PTMS:  # shared by every evaluator on this noise model, dropped with it
            _PTMS[id(model)] = {}
            weakref.finalize(model, _PTMS.pop, id(model), None)
        cache = _PTMS[id(model)]
        if (name, qubit) not in cache:
            from qiskit.quantum_info import PTM

            local = model._local_quantum_errors.get(name, {})  # Aer has no public getter
            if any(len(qubits) > 1 for qubits in local):
                raise _Unsupported(f"the noise model has a multi-qubit error on {name!r}")
            error = local.get((qubit,), model._default_quantum_errors.get(name))
            cache[name, qubit] = None if error is None else np.real(PTM(error.to_quantumchannel()).data)
        return cache[name, qubit]

    def _check_noise(self) -> None:
        model = self.noise_model
        if model is None:
            return
        if getattr(model, "_nonlocal_quantum_errors", None):
            raise _Unsupported("the noise model has non-local errors")
        if any(len(q) > 1 for q in model._local_readout_errors) or (
                model._default_readout_error is not None and model._default_readout_error.number_of_qubits > 1):
            raise _Unsupported("the noise model has a correlated readout error")

    # ---------------------------------------------------------------- compile
    def _program(self, packed: Packed, scale: int) -> list:
        """Per packed slot, the steps [(4, 4) fixed PTM | _Rotation] of the folded circuit (cached)."""
        key = (id(packed), scale)
        if key not in self._programs:
            try:
                self._check_noise()
                programs = self._compile(fold(packed.circuit, scale), packed)
            except _Unsupported as err:
                programs = str(err)
            self._programs[key] = (packed, programs)  # keeps `packed` alive, so its id stays unique
        return self._programs[key][1]

    def _compile(self, circuit, packed: Packed) -> list[list]:
        slot = {phys: q for q, phys in enumerate(packed.physical)}
        steps: list[list] = [[] for _ in packed.physical]
        for instruction in circuit.data:
            op = instruction.operation
            if op.name == "barrier":
                continue
            qubits = [circuit.find_bit(b).index for b in instruction.qubits]
            if len(qubits) != 1 or qubits[0] not in slot:
                raise _Unsupported(f"instruction {op.name!r} on qubits {qubits} is not a gate on one packed qubit")
            q = qubits[0]
            after = self._error(op.name, q)
            if op.is_parameterized():
                if op.name not in _AXES:
                    raise _Unsupported(f"parameterised gate {op.name!r} has no known rotation axis")
                steps[slot[q]].append(_Rotation(_AXES[op.name], *_linear(op.params[0]), after))
                continue
            if op.name in ("measure", "reset", "delay") or not hasattr(op, "to_matrix"):
                raise _Unsupported(f"instruction {op.name!r} is not a unitary gate")
            ptm = unitary_ptm(op.to_matrix())
            ptm = ptm if after is None else after @ ptm
            merged = steps[slot[q]] and not isinstance(steps[slot[q]][-1], _Rotation)
            if merged:
                steps[slot[q]][-1] = ptm @ steps[slot[q]][-1]
            else:
                steps[slot[q]].append(ptm)
        for q, phys in enumerate(packed.physical):  # an error on "measure" acts before the readout
            before = self._error("measure", phys)
            if before is not None:
                steps[q].append(before)
        return steps

    def unsupported(self, packed: Packed, scale: int = 1) -> str | None:
        """Why `packed` (folded to `scale`) cannot be simulated qubit by qubit under this noise, or None."""
        program = self._program(packed, scale)
        return program if isinstance(program, str) else None

    # ---------------------------------------------------------------- run
    def exact(self, packed: Packed, scale: int, rows: np.ndarray) -> np.ndarray:
        """(n, k P) packed rows -> (n, k) exact noisy <Z> before readout."""
        program = self._program(packed, scale)
        out = np.empty((len(rows), packed.k))
        for q, steps in enumerate(program):
            bloch = np.zeros((len(rows), 4))
            bloch[:, 0] = bloch[:, 3] = 1.0  # |0>
            for step in steps:
                if isinstance(step, _Rotation):
                    bloch = _rotate(bloch, step.axis, step.scale * rows[:, step.column] + step.offset)
                    if step.after is not None:
                        bloch = bloch @ step.after.T
                else:
                    bloch = bloch @ step.T
            out[:, q] = bloch[:, 3]
        return np.clip(out, -1.0, 1.0)

    def rates(self, packed: Packed) -> tuple[np.ndarray, np.ndarray]:
        """Readout rates (e01, e10) on the packed qubits (zero without shots: exact values have no readout)."""
        if self.shots is None:
            return np.zeros(packed.k), np.zeros(packed.k)
        return noise_model_readout(self.noise_model, list(packed.physical))

    def task(self, packed: Packed, scale: int, rows: np.ndarray, repeats: int) -> Task:
        """A local job of rows (n, k P) at noise `scale`; collect -> ((repeats, n, k), rates)."""
        rates = self.rates(packed)

        def submit() -> _LocalJob:
            exact = self.exact(packed, scale, rows)[None]  # (1, n, k)
            if self.shots is None:
                return _LocalJob(exact)
            return _LocalJob(binomial_estimates(self.rng, np.repeat(exact, repeats, 0), self.shots, *rates))

        return Task(submit, lambda values: (values, rates), len(rows) * repeats)


def _linear(angle) -> tuple[int, float, float]:
    """(column, scale, offset) with angle = scale * v[column] + offset, for a packed parameter expression."""
    parameters = getattr(angle, "parameters", ())
    if len(parameters) != 1:
        raise _Unsupported(f"gate angle {angle} is not a function of one packed parameter")
    (p,) = parameters
    at = [float(angle.bind({p: t})) for t in (0.0, 1.0, -2.5)]
    scale, offset = at[1] - at[0], at[0]
    if not np.isclose(at[2], offset - 2.5 * scale, rtol=0, atol=1e-12):
        raise _Unsupported(f"gate angle {angle} is not linear in {p}")
    return int(p.index), scale, offset

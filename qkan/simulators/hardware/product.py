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


def _rotate(bloch: np.ndarray, axis: int, angle: np.ndarray) -> None:
    """Rotate (..., 4) Bloch vectors in place about `axis` by (...) angles (R_axis(a) = exp(-i a P / 2))."""
    a, b = {1: (2, 3), 2: (3, 1), 3: (1, 2)}[axis]  # the plane, in right-handed order
    c, s = np.cos(angle), np.sin(angle)
    u, v = bloch[..., a].copy(), bloch[..., b].copy()
    bloch[..., a] = c * u - s * v
    bloch[..., b] = s * u + c * v


def _stack(steps: list[list]) -> list[tuple[np.ndarray, list]]:
    """Per-slot steps -> [(slots (g,), stacked steps)] for slots of the same gate structure.

    A stacked step is a (g, 4, 4) PTM, transposed for row vectors, or (axis, columns (g,),
    scales (g,), offsets (g,)) for a rotation: a group runs as a few batched operations whatever k.
    """
    groups: dict[tuple, list[int]] = {}
    for q, slot in enumerate(steps):
        key = tuple(("R", st.axis) if isinstance(st, _Rotation) else ("F",) for st in slot)
        groups.setdefault(key, []).append(q)
    out = []
    for key, slots in groups.items():
        stacked = []
        for i, kind in enumerate(key):
            column = [steps[q][i] for q in slots]
            if kind[0] == "F":
                stacked.append(np.stack(column).transpose(0, 2, 1).copy())
            else:
                stacked.append((kind[1], np.array([st.column for st in column]), np.array([st.scale for st in column]),
                                np.array([st.offset for st in column])))
        out.append((np.array(slots), stacked))
    return out


@dataclass(frozen=True)
class _Rotation:
    """A rotation about `axis` by scale * row[column] + offset."""

    axis: int
    column: int
    scale: float
    offset: float


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
        self._rates: dict = {}

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
    def _program(self, packed: Packed, scale: int) -> list | str:
        """The stacked steps of the folded circuit (see _stack; cached), or why it cannot run qubit by qubit."""
        key = (id(packed), scale)
        if key not in self._programs:
            try:
                self._check_noise()
                programs = _stack(self._compile(fold(packed.circuit, scale), packed))
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
            if op.is_parameterized():
                if op.name not in _AXES:
                    raise _Unsupported(f"parameterised gate {op.name!r} has no known rotation axis")
                steps[slot[q]].append(_Rotation(_AXES[op.name], *_linear(op.params[0])))
            elif op.name in ("measure", "reset", "delay") or not hasattr(op, "to_matrix"):
                raise _Unsupported(f"instruction {op.name!r} is not a unitary gate")
            else:
                _then(steps[slot[q]], unitary_ptm(op.to_matrix()))
            _then(steps[slot[q]], self._error(op.name, q))  # the gate's error follows it
        for q, phys in enumerate(packed.physical):  # an error on "measure" acts before the readout
            _then(steps[q], self._error("measure", phys))
        return steps

    def unsupported(self, packed: Packed, scale: int = 1) -> str | None:
        """Why `packed` (folded to `scale`) cannot be simulated qubit by qubit under this noise, or None."""
        program = self._program(packed, scale)
        return program if isinstance(program, str) else None

    # ---------------------------------------------------------------- run
    def exact(self, packed: Packed, scale: int, rows: np.ndarray) -> np.ndarray:
        """(n, k P) packed rows -> (n, k) exact noisy <Z> before readout."""
        out = np.empty((len(rows), packed.k))
        for slots, steps in self._program(packed, scale):
            bloch = np.zeros((len(slots), len(rows), 4))  # (g, n, 4)
            bloch[..., 0] = bloch[..., 3] = 1.0  # |0>
            for step in steps:
                if isinstance(step, tuple):
                    axis, columns, scales, offsets = step
                    _rotate(bloch, axis, rows[:, columns].T * scales[:, None] + offsets[:, None])
                else:
                    bloch = bloch @ step
            out[:, slots] = bloch[..., 3].T
        return np.clip(out, -1.0, 1.0)

    def rates(self, packed: Packed) -> tuple[np.ndarray, np.ndarray]:
        """Readout rates (e01, e10) on the packed qubits (zero without shots: exact values have no readout)."""
        if self.shots is None:
            return np.zeros(packed.k), np.zeros(packed.k)
        if id(packed) not in self._rates:
            self._rates[id(packed)] = (packed, noise_model_readout(self.noise_model, list(packed.physical)))
        return self._rates[id(packed)][1]

    def task(self, packed: Packed, scale: int, rows: np.ndarray, repeats: int) -> Task:
        """A local job of rows (n, k P) at noise `scale`; collect -> ((repeats, n, k), rates)."""
        rates = self.rates(packed)

        def submit() -> _LocalJob:
            exact = self.exact(packed, scale, rows)[None]  # (1, n, k)
            if self.shots is None:
                return _LocalJob(exact)
            return _LocalJob(binomial_estimates(self.rng, np.repeat(exact, repeats, 0), self.shots, *rates))

        return Task(submit, lambda values: (values, rates), len(rows) * repeats)


def _then(steps: list, ptm: np.ndarray | None) -> None:
    """Append a (4, 4) PTM to a slot's steps, merged into a trailing fixed step (None: nothing)."""
    if ptm is None:
        return
    if steps and not isinstance(steps[-1], _Rotation):
        steps[-1] = ptm @ steps[-1]
    else:
        steps.append(ptm)


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

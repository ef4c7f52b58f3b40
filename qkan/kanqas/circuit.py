"""A gate-list circuit: what the agent builds, with text rendering, OpenQASM 3 and Qiskit/PennyLane export.

Qubit convention: wire 0 is the most significant bit of a basis index (PennyLane's order);
Qiskit export keeps the qubit labels, so ``Statevector(circuit.to_qiskit())`` equals this
package's state with the qubit axes reversed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Instruction", "Circuit", "FIXED_GATES", "ROTATIONS"]

#: largest register the simulator and the circuits support
MAX_QUBITS = 8
#: parameter-free single-qubit gates of the state-preparation gate set
FIXED_GATES = ("X", "Y", "Z", "H", "T")
#: rotation gates of the ground-state gate set
ROTATIONS = ("RX", "RY", "RZ")


@dataclass(frozen=True)
class Instruction:
    """One placed gate (an instruction): ``name`` in CNOT | X Y Z H T | RX RY RZ; ``qubits`` = (control, target) for CNOT.

    ``param`` indexes the circuit's angle vector for rotations (None for fixed gates).
    """

    name: str
    qubits: tuple[int, ...]
    param: int | None = None


@dataclass
class Circuit:
    """A circuit on ``n_qubits`` wires: optional X gates on ``initial_bits`` (a basis-state start,
    e.g. Hartree-Fock), then ``gates`` in order; rotation angles live in ``angles``."""

    n_qubits: int
    gates: list[Instruction] = field(default_factory=list)
    angles: np.ndarray = field(default_factory=lambda: np.zeros(0))
    initial_bits: tuple[int, ...] = ()

    def append(self, name: str, qubits: tuple[int, ...], angle: float | None = None) -> Instruction:
        """Add a gate (a rotation takes a new angle slot, initialised to ``angle`` or 0)."""
        param = None
        if name in ROTATIONS:
            param = len(self.angles)
            self.angles = np.append(self.angles, 0.0 if angle is None else float(angle))
        gate = Instruction(name, tuple(int(q) for q in qubits), param)
        self.gates.append(gate)
        return gate

    def copy(self) -> Circuit:
        return Circuit(self.n_qubits, list(self.gates), self.angles.copy(), self.initial_bits)

    def to_dict(self) -> dict:
        """Plain types only (str, int, float, lists): loadable with torch.load(weights_only=True)."""
        return {"n_qubits": self.n_qubits, "initial_bits": list(self.initial_bits),
                "gates": [[g.name, list(g.qubits), -1 if g.param is None else g.param] for g in self.gates],
                "angles": [float(a) for a in self.angles]}

    @classmethod
    def from_dict(cls, data: dict) -> Circuit:
        """Inverse of ``to_dict``; ValueError saying what is wrong for anything it would not write."""
        try:
            n, bits, angles = data["n_qubits"], data["initial_bits"], data["angles"]
            if not _is_int(n) or not 1 <= n <= MAX_QUBITS:
                raise ValueError(f"n_qubits must be an int in [1, {MAX_QUBITS}]; got {n!r}")
            if not isinstance(bits, list) or len(bits) not in (0, n) or any(b not in (0, 1) or not _is_int(b) for b in bits):
                raise ValueError(f"initial_bits must be [] or {n} bits; got {bits!r}")
            if not isinstance(angles, list) or not all(isinstance(a, float) and np.isfinite(a) for a in angles):
                raise ValueError("angles must be a list of finite floats")
            gates = [_instruction(entry, n, k) for k, entry in enumerate(data["gates"])]
            params = [g.param for g in gates if g.param is not None]
            if params != list(range(len(angles))):
                raise ValueError(f"rotations must use angle indices 0..{len(angles) - 1} in order; got {params}")
        except (KeyError, TypeError) as err:
            raise ValueError(f"not a circuit dict ({type(err).__name__}: {err})") from None
        return cls(n, gates, np.asarray(angles, dtype=float), tuple(bits))

    @property
    def n_params(self) -> int:
        return len(self.angles)

    @property
    def n_gates(self) -> int:
        """Number of gates (the initial-state X gates are not counted)."""
        return len(self.gates)

    @property
    def n_cnots(self) -> int:
        return sum(g.name == "CNOT" for g in self.gates)

    def layers(self, *, span: bool = False) -> list[list[Instruction]]:
        """Gates grouped into layers: each gate goes into the first layer free on all its qubits
        (the rule the observation tensor uses); ``span=True`` also blocks the wires between a
        CNOT's control and target (for drawing)."""
        free = [0] * self.n_qubits
        out: list[list[Instruction]] = []
        for gate in self.gates:
            qs = _span(gate) if span else gate.qubits
            slot = max(free[q] for q in qs)
            for q in qs:
                free[q] = slot + 1
            if slot == len(out):
                out.append([])
            out[slot].append(gate)
        return out

    @property
    def depth(self) -> int:
        return len(self.layers())

    def draw(self) -> str:
        """Text drawing, one line per qubit: ``H`` etc. for gates, ``@`` control, ``X+`` target."""
        rows = [[f"q{q}: "] for q in range(self.n_qubits)]
        if self.initial_bits:
            for q in range(self.n_qubits):
                rows[q].append(f"|{self.initial_bits[q]}>")
        for layer in self.layers(span=True):
            cell = ["" for _ in range(self.n_qubits)]
            for gate in layer:
                if gate.name == "CNOT":
                    c, t = gate.qubits
                    cell[c], cell[t] = "@", "X+"
                    for q in range(min(c, t) + 1, max(c, t)):
                        cell[q] = "|"
                elif gate.param is not None:
                    cell[gate.qubits[0]] = f"{gate.name}({self.angles[gate.param]:.3f})"
                else:
                    cell[gate.qubits[0]] = gate.name
            width = max(len(c) for c in cell)
            for q in range(self.n_qubits):
                rows[q].append("-" + cell[q].center(width, "-") + "-")
        return "\n".join("".join(r) + "-" for r in rows)

    def __str__(self) -> str:
        return self.draw()

    def to_qasm(self) -> str:
        """OpenQASM 3 text (gates from stdgates.inc; angles written so they read back exactly)."""
        lines = ["OPENQASM 3.0;", 'include "stdgates.inc";', f"qubit[{self.n_qubits}] q;"]
        lines += [f"x q[{q}];" for q, bit in enumerate(self.initial_bits) if bit]
        for gate in self.gates:
            if gate.name == "CNOT":
                lines.append(f"cx q[{gate.qubits[0]}], q[{gate.qubits[1]}];")
            elif gate.param is not None:
                lines.append(f"{gate.name.lower()}({float(self.angles[gate.param])!r}) q[{gate.qubits[0]}];")
            else:
                lines.append(f"{gate.name.lower()} q[{gate.qubits[0]}];")
        return "\n".join(lines) + "\n"

    def to_qiskit(self):
        """A qiskit QuantumCircuit with the current angles (needs qiskit)."""
        try:
            from qiskit import QuantumCircuit
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError('Circuit.to_qiskit needs qiskit: pip install "qkan-daruan[qiskit]"') from err
        qc = QuantumCircuit(self.n_qubits)
        for q, bit in enumerate(self.initial_bits):
            if bit:
                qc.x(q)
        for gate in self.gates:
            if gate.name == "CNOT":
                qc.cx(*gate.qubits)
            elif gate.param is not None:
                getattr(qc, gate.name.lower())(float(self.angles[gate.param]), gate.qubits[0])
            else:
                getattr(qc, gate.name.lower())(gate.qubits[0])
        return qc

    def to_pennylane(self):
        """A PennyLane quantum function ``qfunc()`` applying the circuit on wires 0..n-1
        (wrap it in ``qml.QNode`` with any device)."""
        try:
            import pennylane as qml
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError('Circuit.to_pennylane needs pennylane: pip install "qkan-daruan[pennylane]"') from err
        ops = {"X": qml.PauliX, "Y": qml.PauliY, "Z": qml.PauliZ, "H": qml.Hadamard, "T": qml.T,
               "RX": qml.RX, "RY": qml.RY, "RZ": qml.RZ}
        gates, angles, bits = list(self.gates), self.angles.copy(), self.initial_bits

        def qfunc():
            for q, bit in enumerate(bits):
                if bit:
                    qml.PauliX(q)
            for gate in gates:
                if gate.name == "CNOT":
                    qml.CNOT(wires=list(gate.qubits))
                elif gate.param is not None:
                    ops[gate.name](float(angles[gate.param]), wires=gate.qubits[0])
                else:
                    ops[gate.name](wires=gate.qubits[0])

        return qfunc

    def on_backend(self, task, backend, **options):
        """The task's fidelity or energy of this circuit measured on a Qiskit backend, with error
        bars (shots, readout mitigation): see ``qkan.kanqas.hardware.run_on_backend``."""
        from qkan.kanqas.hardware import run_on_backend

        return run_on_backend(self, task, backend, **options)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _instruction(entry, n: int, k: int) -> Instruction:
    """Gate entry k of a circuit dict ([name, qubits, param]) as an Instruction, checked."""
    name, qubits, param = entry
    arity = 2 if name == "CNOT" else 1
    if name not in ("CNOT", *FIXED_GATES, *ROTATIONS):
        raise ValueError(f"gate {k}: unknown gate {name!r}")
    if (not isinstance(qubits, list) or len(qubits) != arity or len(set(qubits)) != arity
            or not all(_is_int(q) and 0 <= q < n for q in qubits)):
        raise ValueError(f"gate {k} ({name}): qubits must be {arity} distinct ints in [0, {n}); got {qubits!r}")
    if not _is_int(param) or (param >= 0) != (name in ROTATIONS):
        raise ValueError(f"gate {k} ({name}): param must be an angle index for rotations, -1 otherwise; got {param!r}")
    return Instruction(name, tuple(qubits), param if param >= 0 else None)


def _span(gate: Instruction) -> range | tuple[int, ...]:
    """Qubits a gate occupies in a layer drawing (a CNOT blocks the wires between its ends)."""
    if gate.name == "CNOT":
        lo, hi = sorted(gate.qubits)
        return range(lo, hi + 1)
    return gate.qubits

"""DARUAN ansaetze as data: the one source of truth every evaluator and converter reads.

A DARUAN on one qubit is

    U(x) = F . prod_{l=R-1..0} [ E(phi_l(x)) . G_l ] . H,     f(x) = <0| U^dag Z U |0>

where ``G_l`` is the rep's list of trainable or fixed gates (``rep_gates``, first acts first),
``E`` the data rotation (``encoding_gate``, applied to ``phi_l = w_l x + b_l`` or to
``arccos(phi_l)``) and ``F`` the final trainable gates (``final_gates``); arXiv 2509.14026.
Gates: RZ(a) = diag(e^{-ia/2}, e^{ia/2}), RY(a) = [[c, -s], [s, c]], RX(a) = [[c, -is], [-is, c]]
with c = cos(a/2), s = sin(a/2); H, X, Z the usual fixed gates. ``register_ansatz`` adds one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Gate", "Ansatz", "ANSATZE", "get_ansatz", "register_ansatz", "GATES", "MAX_GATES"]

#: gate names a spec may use (rotations take a theta index, fixed gates none)
GATES = {"RX": True, "RY": True, "RZ": True, "H": False, "X": False, "Z": False}
#: most gates in a repetition or in the final gates (the native kernels' limit)
MAX_GATES = 8


@dataclass(frozen=True)
class Gate:
    """One gate of a repetition.

    Attributes:
        name: "RX" | "RY" | "RZ" (rotations) or "H" | "X" | "Z" (fixed).
        param: index into the slot's theta vector for rotations; None for fixed gates.
    """

    name: str
    param: int | None = None


@dataclass(frozen=True)
class Ansatz:
    """A DARUAN ansatz.

    Attributes:
        name: the ansatz's name.
        rep_gates: gates of one repetition before its data rotation, first acts first.
        encoding_gate: "RZ" | "RY" | "RX", the data rotation closing each repetition.
        arccos: the data rotation's angle is arccos(phi) instead of phi (needs |phi| <= 1).
        final_gates: gates after the last repetition (theta slot R); may be empty.
        k: trainable angles per theta slot.
        extension: how ``QKAN.extend`` adds repetitions without changing f:
            "diagonal": new slots at angle 0 leave a diagonal tail that commutes with Z (any
            encoding); "identity": new slots at `pad_angle` with encoding w = b = 0 make each new
            repetition the identity (needs a trainable encoding); None: not extendable.
        pad_angle: the angle of new slots under extension.
        no_extension: why the ansatz cannot be extended (extension None).
    """

    name: str
    rep_gates: tuple[Gate, ...]
    encoding_gate: str
    arccos: bool
    final_gates: tuple[Gate, ...]
    k: int
    extension: str | None = "diagonal"
    pad_angle: float = 0.0
    no_extension: str = ""

    def n_slots(self, reps: int) -> int:
        """Number of theta slots: one per repetition, plus one for the final gates."""
        return reps + (1 if self.final_gates else 0)

    def theta_shape(self, reps: int) -> tuple[int, int]:
        """Shape of one edge's theta: (n_slots, k)."""
        return (self.n_slots(reps), self.k)

    @property
    def domain(self) -> tuple[float, float] | None:
        """The interval the encoded angles phi must lie in: (-1, 1) for arccos ansaetze, None for any real."""
        return (-1.0, 1.0) if self.arccos else None

    @property
    def closed_form(self) -> bool:
        """True when f is a trigonometric polynomial in phi (data rotation without arccos)."""
        return not self.arccos

    def extension_problem(self, trainable_encoding: bool) -> str | None:
        """Why a layer of this ansatz cannot be extended, as the end of "extend() ..."; None when it can."""
        if self.extension is None:
            return f"does not support ansatz {self.name!r}: {self.no_extension}"
        if self.extension == "identity" and not trainable_encoding:
            return (
                f"needs a trainable encoding ('edge' or 'input') for ansatz {self.name!r}: new repetitions are made "
                "the identity with encoding weight 0; with encoding='fixed' they would change the function"
            )
        return None


ANSATZE: dict[str, Ansatz] = {
    "pz": Ansatz("pz", (Gate("RZ", 0), Gate("RY", 1)), "RZ", False, (Gate("RZ", 0), Gate("RY", 1)), 2),
    "rpz": Ansatz("rpz", (Gate("RY", 0),), "RZ", False, (Gate("RY", 0),), 1),
    "px": Ansatz(
        "px", (Gate("RZ", 0),), "RX", True, (Gate("RZ", 0),), 1, extension=None,
        no_extension="a new repetition is the identity only at phi = 1, where arccos(phi) has an infinite derivative",
    ),
    # X RY(pi) Z = -I up to the RY(phi = 0) data rotation: new reps are the identity (global phase)
    "real": Ansatz("real", (Gate("X"), Gate("RY", 0), Gate("Z")), "RY", False, (), 1, extension="identity", pad_angle=math.pi),
    "mix": Ansatz("mix", (Gate("RZ", 0), Gate("RX", 1)), "RY", False, (Gate("RZ", 0), Gate("RX", 1)), 2, extension="identity"),
}


def get_ansatz(name: str) -> Ansatz:
    """Look up an ansatz by name; ValueError naming the choices otherwise."""
    if not isinstance(name, str) or name not in ANSATZE:
        raise ValueError(f"`ansatz` must be one of {sorted(ANSATZE)}; got {name!r}")
    return ANSATZE[name]


def register_ansatz(name: str, spec: Ansatz) -> None:
    """Make `name` usable as ``QKANLayer(ansatz=name)``: every evaluator, converter and the
    independent reference (``qkan.testing``) read the spec.

    Args:
        name: the ansatz's name (``spec.name`` must equal it); registering a name again replaces it.
        spec: an Ansatz: rotations with a theta index < k, at most MAX_GATES gates per list, an
            RX/RY/RZ data rotation.

    Examples:
        >>> register_ansatz("ry", Ansatz("ry", (Gate("RY", 0),), "RZ", False, (Gate("RY", 0),), 1))
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"`name` must be a non-empty str; got {name!r}")
    if not isinstance(spec, Ansatz):
        raise TypeError(f"`spec` must be a qkan.circuits.ansatz.Ansatz; got {type(spec).__name__}")
    if spec.name != name:
        raise ValueError(f"`spec.name` must equal `name`; got {spec.name!r} and {name!r}")
    if spec.encoding_gate not in ("RX", "RY", "RZ"):
        raise ValueError(f"`spec.encoding_gate` must be 'RX', 'RY' or 'RZ'; got {spec.encoding_gate!r}")
    if not isinstance(spec.k, int) or spec.k < 1:
        raise ValueError(f"`spec.k` must be an int >= 1; got {spec.k!r}")
    if spec.extension not in ("diagonal", "identity", None):
        raise ValueError(f"`spec.extension` must be 'diagonal', 'identity' or None; got {spec.extension!r}")
    for field in ("rep_gates", "final_gates"):
        gates = getattr(spec, field)
        if len(gates) > MAX_GATES:
            raise ValueError(f"`spec.{field}` may hold at most {MAX_GATES} gates; got {len(gates)}")
        for g in gates:
            if not isinstance(g, Gate) or g.name not in GATES:
                raise ValueError(f"`spec.{field}` must hold Gate objects named one of {sorted(GATES)}; got {g!r}")
            if GATES[g.name] != (g.param is not None) or (g.param is not None and not 0 <= g.param < spec.k):
                expected = f"a theta index in [0, {spec.k})" if GATES[g.name] else "no parameter"
                raise ValueError(f"`spec.{field}`: gate {g.name} takes {expected}; got param={g.param!r}")
    ANSATZE[name] = spec

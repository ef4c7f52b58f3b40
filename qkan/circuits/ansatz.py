"""DARUAN ansaetze as data: the one source of truth every evaluator and converter reads.

A DARUAN on one qubit is

    U(x) = F . prod_{l=R-1..0} [ E(phi_l(x)) . G_l ] . H,     f(x) = <0| U^dag Z U |0>

where ``G_l`` is the rep's list of trainable or fixed gates (``rep_gates``, first acts first),
``E`` the data rotation (``encoding_gate``, applied to ``phi_l = w_l x + b_l`` or to
``arccos(phi_l)``) and ``F`` the final trainable gates (``final_gates``). See
docs/math.md (every ansatz's gates) and arXiv 2509.14026.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Gate", "Ansatz", "ANSATZE", "get_ansatz"]


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

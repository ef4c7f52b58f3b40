"""Choosing physical qubits from a backend's calibration (``backend.target``).

A one-qubit DARUAN edge of R repetitions runs about 2 (R + 1) sx/x pulses and one measurement,
so a qubit's expected error is its readout error, plus the pulses' errors, plus the chance of
relaxing during them (1 - exp(-t / T1), and dephasing with T2). Qubits without calibration
data for measure or sx (how IBM targets mark faulty qubits), or with an error of 0.5 or more,
are skipped.

The "auto" rule (``auto_qubits``): the usable qubits whose readout error is at or below the
median readout error of the chip's usable qubits (or at or below ``max_readout_error`` when one
is given) and whose sx/x error is at most twice the chip's median (no gate outliers), best
first. Half of any chip passes the readout median, so small chips keep at least one qubit;
wide packing trades about half the qubits for the better half of the readout (FakeSherbrooke:
56 of 127 qubits, mean readout error 1.1% against a median of 2.0%).
"""

from __future__ import annotations

import numpy as np

#: "auto" skips qubits whose sx/x error is above this multiple of the chip median (outliers)
GATE_OUTLIER = 2.0

__all__ = ["auto_qubits", "calibration_report", "qubit_calibration", "rank_qubits"]


def _error(target, name: str, q: int) -> tuple[float | None, float | None]:
    """(error, duration) of instruction `name` on qubit q, or (None, None) without calibration."""
    if name not in target.operation_names:
        return None, None
    props = target[name].get((q,))
    if props is None:
        return None, None
    return props.error, props.duration


def qubit_calibration(target) -> dict[str, np.ndarray]:
    """Per-qubit calibration: readout, gate (mean of sx/x), t1, t2, gate_time; NaN where absent."""
    n = target.num_qubits
    table = {key: np.full(n, np.nan) for key in ("readout", "gate", "t1", "t2", "gate_time")}
    for q in range(n):
        readout, _ = _error(target, "measure", q)
        if readout is not None:
            table["readout"][q] = readout
        gates = [_error(target, name, q) for name in ("sx", "x") if name in target.operation_names]
        errors = [e for e, _ in gates]
        times = [t for _, t in gates if t is not None]
        if errors and None not in errors:  # a gate without calibration marks the qubit faulty (NaN)
            table["gate"][q] = float(np.mean(errors))
        if times:
            table["gate_time"][q] = float(np.mean(times))
        props = target.qubit_properties[q] if target.qubit_properties else None
        for key in ("t1", "t2"):
            value = getattr(props, key, None) if props is not None else None
            if value:
                table[key][q] = value
    return table


def rank_qubits(target, reps: int, max_readout_error: float | None = None) -> list[int]:
    """Usable physical qubits, best first, by expected error of one edge circuit.

    Args:
        target: a qiskit Target.
        reps: the ansatz's repetitions R (about 2 (R + 1) pulses per edge).
        max_readout_error: qubits with a larger readout error are skipped (None: no limit).
    Returns:
        Qubit indices sorted by readout + pulses * gate error + decoherence over the pulses.
    """
    cal = qubit_calibration(target)
    pulses = 2 * (reps + 1)
    duration = pulses * np.nan_to_num(cal["gate_time"], nan=0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        decay = np.nan_to_num(1 - np.exp(-duration / cal["t1"]), nan=0.0) + np.nan_to_num(
            1 - np.exp(-duration / cal["t2"]), nan=0.0
        ) / 2
    has_gate = bool(np.isfinite(cal["gate"]).any())  # a target with gate calibration: require it
    score = cal["readout"] + pulses * np.nan_to_num(cal["gate"], nan=0.0) + decay
    usable = np.isfinite(cal["readout"]) & (cal["readout"] < 0.5) & (np.nan_to_num(cal["gate"]) < 0.5)
    if has_gate:
        usable &= np.isfinite(cal["gate"])
    if max_readout_error is not None:
        usable &= cal["readout"] <= max_readout_error
    qubits = np.flatnonzero(usable)
    return [int(q) for q in qubits[np.argsort(score[qubits], kind="stable")]]


def auto_qubits(target, reps: int, max_readout_error: float | None = None) -> list[int]:
    """The qubits "auto" uses, best first: readout error <= `max_readout_error`, or <= the chip median.

    Args:
        target: a qiskit Target.
        reps: the ansatz's repetitions R (for the ranking).
        max_readout_error: the readout threshold; None: the median readout error of the usable
            qubits. Qubits with a sx/x error above GATE_OUTLIER x the median are skipped either way.
    Returns:
        Physical qubits ranked as by rank_qubits, empty when none passes an explicit threshold.
    """
    usable = rank_qubits(target, reps)
    cal = qubit_calibration(target)
    if max_readout_error is None:
        if not usable:
            return []
        max_readout_error = float(np.median(cal["readout"][usable]))
    gate = cal["gate"][usable] if usable else np.array([np.nan])
    gate_limit = GATE_OUTLIER * float(np.median(gate)) if np.isfinite(gate).all() else np.inf
    return [q for q in rank_qubits(target, reps, max_readout_error) if not cal["gate"][q] > gate_limit]


def calibration_report(target, qubits: list[int], reps: int) -> dict:
    """Mean readout and sx/x errors of `qubits` next to the medians of the chip's usable qubits."""
    cal = qubit_calibration(target)
    usable = rank_qubits(target, reps)
    chosen = np.asarray(qubits, dtype=np.int64)

    def mean(values: np.ndarray) -> float | None:
        return float(np.nanmean(values)) if values.size and np.isfinite(values).any() else None

    return {"qubits": [int(q) for q in qubits],
            "mean_readout_error": mean(cal["readout"][chosen]), "mean_gate_error": mean(cal["gate"][chosen]),
            "chip_median_readout_error": float(np.nanmedian(cal["readout"][usable])) if usable else None,
            "chip_median_gate_error": float(np.nanmedian(cal["gate"][usable]))
            if usable and np.isfinite(cal["gate"][usable]).any() else None}

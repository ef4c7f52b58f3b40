"""Shots as a binomial draw from exact expectations, and the readout error that reaches them.

S shots of one qubit measured in Z are i.i.d. Bernoulli with P(1) = p' where p = (1 - <Z>) / 2
is the probability of |1> before readout and a classical readout error flips 0 -> 1 with e01
and 1 -> 0 with e10: p' = p (1 - e10) + (1 - p) e01. The estimate 1 - 2 Binomial(S, p') / S
has the distribution of the sampled circuit's estimate, so a simulator that computes the
exact (noisy) expectation and then draws is distributionally identical to sampling it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["binomial_estimates", "noise_model_readout", "target_readout"]


def binomial_estimates(
    rng: np.random.Generator, exact: np.ndarray, shots: int, e01: np.ndarray | float = 0.0, e10: np.ndarray | float = 0.0
) -> np.ndarray:
    """Shot estimates of <Z> from exact values.

    Args:
        rng: the generator drawing the shots.
        exact: (..., k) exact <Z> values before readout.
        shots: shots per value.
        e01, e10: readout error rates P(read 1 | 0), P(read 0 | 1), broadcast against `exact`
            (per qubit: shape (k,)).
    Returns:
        (..., k) estimates 1 - 2 n1 / S with n1 ~ Binomial(S, p').
    """
    p1 = np.clip((1.0 - exact) / 2.0, 0.0, 1.0)  # P(|1>) before readout
    p1 = p1 * (1.0 - np.asarray(e10)) + (1.0 - p1) * np.asarray(e01)
    ones = rng.binomial(shots, np.clip(p1, 0.0, 1.0))
    return 1.0 - 2.0 * ones / shots


def noise_model_readout(noise_model, qubits: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(e01, e10), each (k,), of an Aer NoiseModel's readout errors on physical `qubits` (0 where none)."""
    e01, e10 = np.zeros(len(qubits)), np.zeros(len(qubits))
    if noise_model is None:
        return e01, e10
    local = noise_model._local_readout_errors  # {(q,): ReadoutError}; Aer has no public getter
    default = noise_model._default_readout_error
    for n, q in enumerate(qubits):
        error = local.get((q,), default)
        if error is not None:
            probs = np.asarray(error.probabilities)  # rows: prepared 0, 1; columns: read 0, 1
            e01[n], e10[n] = probs[0, 1], probs[1, 0]
    return e01, e10


def target_readout(target, qubits: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(e01, e10), each (k,), from a Target's measure errors (symmetric: a target holds one rate)."""
    e = np.zeros(len(qubits))
    if target is not None and "measure" in target.operation_names:
        for n, q in enumerate(qubits):
            props = target["measure"].get((q,))
            if props is not None and props.error is not None:
                e[n] = props.error
    return e, e.copy()

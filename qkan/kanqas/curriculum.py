"""Moving-threshold curriculum for ground-state search (CRLQAS, arXiv 2402.03500)."""

from __future__ import annotations

from qkan._checks import check_int, check_interval

__all__ = ["MovingThreshold", "CHEMICAL_ACCURACY"]

#: |E - E_exact| below this (Hartree) is chemical accuracy: the curriculum's final threshold
CHEMICAL_ACCURACY = 1.6e-3


class MovingThreshold:
    """Success threshold on |E - E_min| that starts loose and tightens with successes.

    After every ``patience`` successes the threshold is multiplied by ``shrink`` (never below
    ``final``). Every ``reset_every`` episodes it is set to |E_best - E_min| + ``margin``, kept
    in [final, start], so it follows what the agent has actually reached; ``start`` should be
    below the initial state's error, or doing nothing would count as a success.

    Args:
        start: initial threshold (Hartree).
        final: the goal, chemical accuracy by default.
        shrink: factor in (0, 1) applied after ``patience`` successes.
        patience: successes between two shrinks.
        reset_every: episodes between resets towards the best error.
        margin: added to the best error on a reset.
    """

    def __init__(self, start: float = 0.1, *, final: float = CHEMICAL_ACCURACY, shrink: float = 0.5,
                 patience: int = 5, reset_every: int = 200, margin: float = 5e-3) -> None:
        if not start >= final > 0:
            raise ValueError(f"`start` must be >= `final` > 0; got start={start!r}, final={final!r}")
        if not 0 < shrink < 1:
            raise ValueError(f"`shrink` must be in (0, 1); got {shrink!r}")
        check_int("patience", patience)
        check_int("reset_every", reset_every)
        if not margin >= 0:
            raise ValueError(f"`margin` must be >= 0; got {margin!r}")
        self.start, self.final, self.shrink, self.patience = start, final, shrink, patience
        self.reset_every, self.margin = reset_every, margin
        self.threshold, self.best_error, self.episodes, self.successes = start, float("inf"), 0, 0

    def update(self, success: bool, error: float) -> float:
        """Record one finished episode; returns the threshold for the next one."""
        self.episodes += 1
        self.best_error = min(self.best_error, error)
        if success:
            self.successes += 1
            if self.successes % self.patience == 0:
                self.threshold = max(self.final, self.threshold * self.shrink)
        if self.episodes % self.reset_every == 0:  # never looser than start
            self.threshold = min(self.start, max(self.final, self.best_error + self.margin))
        return self.threshold

    def state_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("threshold", "best_error", "episodes", "successes")}

    def load_state_dict(self, state: dict) -> None:
        """Restore ``state_dict()`` output; ValueError (and nothing changed) for other keys or bad values."""
        keys = ("threshold", "best_error", "episodes", "successes")
        if not isinstance(state, dict) or set(state) != set(keys):
            raise ValueError(f"curriculum state must have exactly the keys {list(keys)}; got "
                             f"{sorted(state) if isinstance(state, dict) else type(state).__name__}")
        check_interval("curriculum threshold", state["threshold"], self.final, self.start)
        best = state["best_error"]
        if not isinstance(best, (int, float)) or isinstance(best, bool) or not (best >= 0):  # inf before any episode
            raise ValueError(f"curriculum best_error must be a number >= 0; got {best!r}")
        check_int("curriculum episodes", state["episodes"], low=0)
        check_int("curriculum successes", state["successes"], low=0, high=state["episodes"])
        for k in keys:
            setattr(self, k, state[k])

    def __repr__(self) -> str:
        return f"MovingThreshold(threshold={self.threshold:.3g}, final={self.final:.3g})"

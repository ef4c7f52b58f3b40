"""Test-session settings: set before torch, PennyLane-Lightning or Aer load their OpenMP runtimes.

On small machines several OpenMP pools spinning against each other slow tests tenfold, so the
suite runs single-threaded with passive waiting (subprocesses and notebooks inherit this).
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("MPLBACKEND", "Agg")

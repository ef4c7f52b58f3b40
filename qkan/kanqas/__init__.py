"""KANQAS: quantum architecture search by double DQN with a QKAN, KAN or MLP Q-network.

    from qkan import kanqas
    env = kanqas.CircuitEnv(task=kanqas.tasks.StatePrep("ghz", n_qubits=3), max_depth=12)
    agent = kanqas.DDQNAgent(env, q_network="qkan", seed=0)
    agent.train(500); print(agent.best_circuit())

Needs gymnasium (and pennylane for molecular Hamiltonians): pip install "qkan[kanqas]".
References: Kundu, Sarkar, Sadhu, arXiv 2406.17630; Patel, Kundu et al., arXiv 2402.03500.
"""

try:
    import gymnasium  # noqa: F401
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError('qkan.kanqas needs gymnasium: pip install "qkan[kanqas]"') from err

from qkan.kanqas import tasks
from qkan.kanqas.agent import DDQNAgent, ReplayBuffer
from qkan.kanqas.circuit import Circuit, Gate
from qkan.kanqas.curriculum import MovingThreshold
from qkan.kanqas.env import CircuitEnv
from qkan.kanqas.qnets import BSplineKAN, MLP, make_q_network
from qkan.kanqas.simulator import Noise
from qkan.kanqas.tasks import GroundState, StatePrep, make_task

__all__ = [
    "BSplineKAN", "Circuit", "CircuitEnv", "DDQNAgent", "Gate", "GroundState", "MLP", "MovingThreshold",
    "Noise", "ReplayBuffer", "StatePrep", "make_q_network", "make_task", "tasks",
]

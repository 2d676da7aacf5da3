"""The bundled center simulator (RC-1, ER-3, PL-2, EN-3): a synthetic credit information center.

``create_simulator_app()`` builds it as a FastAPI app (mount in-process with ``simulator_transport``);
``run_simulator()`` serves it as its own process (``shokai center-sim``, or
``python -m app.center.simulator``).
"""

from app.center.simulator.app import create_simulator_app, simulator_state, simulator_transport
from app.center.simulator.server import run_simulator, serve_simulator

__all__ = [
    "create_simulator_app",
    "run_simulator",
    "serve_simulator",
    "simulator_state",
    "simulator_transport",
]

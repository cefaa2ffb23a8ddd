"""vidsonar: multilingual video retrieval in a shared concept space (v-Sonar).

This package is the base layer: errors and the data-directory layout, importable
from everywhere and importing nothing of the project. The layers above it point one way:
``api -> search -> indexer / encoders -> storage -> vidsonar``.
"""

__version__ = "0.1.0"

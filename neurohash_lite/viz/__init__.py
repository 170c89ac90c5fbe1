"""Visualisation: the Hamming-space explorer of Chapter 8 and the diagrams of the networks."""

from neurohash_lite.viz.diagrams import (
    draw_dcpha_network,
    draw_retrieval_pipeline,
    draw_two_branch_network,
)
from neurohash_lite.viz.explorer import (
    CLASS_NAMES,
    HammingExplorer,
    Neighbours,
    RadiusReport,
    classical_mds,
)

__all__ = [
    "CLASS_NAMES",
    "HammingExplorer",
    "Neighbours",
    "RadiusReport",
    "classical_mds",
    "draw_dcpha_network",
    "draw_retrieval_pipeline",
    "draw_two_branch_network",
]

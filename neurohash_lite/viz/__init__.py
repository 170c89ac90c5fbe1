"""Visualisation of hash codes: the Hamming-space explorer of Chapter 8."""

from neurohash_lite.viz.explorer import (
    CLASS_NAMES,
    HammingExplorer,
    Neighbours,
    RadiusReport,
    classical_mds,
)

__all__ = ["CLASS_NAMES", "HammingExplorer", "Neighbours", "RadiusReport", "classical_mds"]

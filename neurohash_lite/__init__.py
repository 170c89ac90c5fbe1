"""neurohash_lite: the support package of the NeuroHash book.

Deep cross-modal hashing for neuroimage retrieval, small enough to read in one
sitting. Chapters import from it what they have already taught:

- :mod:`neurohash_lite.runtime`: device, seeds, scale tiers, environment report
- :mod:`neurohash_lite.data`: the synthetic sMRI/PET cohort, BIDS loading, splits
- :mod:`neurohash_lite.metrics`: Hamming distance, mAP, PR curves (tie-aware)
- :mod:`neurohash_lite.retrieval`: packed codes and a Hamming index
- :mod:`neurohash_lite.multi_index`: multi-index hashing, exact Hamming search by lookup
- :mod:`neurohash_lite.archive`: synthetic archives of codes at scale, sampled around trained outputs
- :mod:`neurohash_lite.models`, :mod:`neurohash_lite.losses`, :mod:`neurohash_lite.train`
"""

__version__ = "0.1.0"

"""The losses of the book's hashing methods, one module per method.

- :mod:`neurohash_lite.losses.ahs`: Adaptive Hash Semantics (Tao & An, 2021)
"""

from neurohash_lite.losses.ahs import (  # noqa: F401
    AHSLoss,
    ahs_balance_loss,
    ahs_likelihood_loss,
    ahs_pair_weights,
    ahs_push_loss,
    ahs_quantization_loss,
    ahs_shared_code,
    ahs_similarity,
    ahs_theta,
    ahs_triplet_loss,
)

"""The losses of the book's hashing methods, one module per method.

- :mod:`neurohash_lite.losses.ahs`: Adaptive Hash Semantics (Tao & An, 2021)
- :mod:`neurohash_lite.losses.dcpha`: DCPHA, deep consistency-preserving hash auto-encoders (Wang & Zeng, 2023)
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
from neurohash_lite.losses.dcpha import (  # noqa: F401
    dcpha_distance,
    dcpha_heterogeneous_similarity,
    dcpha_homogeneous_similarity,
    dcpha_j1,
    dcpha_j2,
    dcpha_laplacian_objective,
    dcpha_loss,
    dcpha_multimanifold_similarity,
    dcpha_regularizer,
    dcpha_same_label,
)
from neurohash_lite.losses.triplet import TripletHashingLoss  # noqa: F401
from neurohash_lite.losses.dcmh import DCMHLoss, dcmh_balance_loss, dcmh_likelihood_loss, dcmh_theta  # noqa: F401
from neurohash_lite.losses.dpsh import DPSHLoss, dpsh_quantization_loss  # noqa: F401
from neurohash_lite.losses.hashnet import (  # noqa: F401
    ContinuationHashNet,
    HashNetLoss,
    hashnet_likelihood_loss,
    hashnet_stages,
)
from neurohash_lite.losses.csq import CSQLoss, csq_central_loss, csq_hash_centres, csq_quantization_loss  # noqa: F401

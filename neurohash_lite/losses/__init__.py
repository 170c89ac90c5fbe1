"""The losses of the book's hashing methods, one module per method.

The book's two methods:

- :mod:`.ahs`: Adaptive Hash Semantics (Tao & An, 2021)
- :mod:`.dcpha`: DCPHA, deep consistency-preserving hash auto-encoders (Wang & Zeng, 2023)

The baselines that are only a loss on the shared two-branch network:

- :mod:`.triplet`: the cross-modal triplet hinge (Schroff et al., 2015), the book's control
- :mod:`.dcmh`: DCMH, deep cross-modal hashing (Jiang & Li, CVPR 2017)
- :mod:`.pgdh`: PGDH as Tao & An name it, PRDH as its authors do (Yang et al., AAAI 2017)
- :mod:`.cmhh`: CMHH, cross-modal Hamming hashing (Cao et al., ECCV 2018)
- :mod:`.dhn`: DHN, deep hashing network (Zhu et al., AAAI 2016)
- :mod:`.dsh`: DSH, deep supervised hashing (Liu et al., CVPR 2016)
- :mod:`.dpsh`: DPSH, deep pairwise-supervised hashing (Li et al., IJCAI 2016)
- :mod:`.hashnet`: HashNet with its continuation (Cao et al., ICCV 2017)
- :mod:`.lcdsh`: LCDSH, locality-constrained deep supervised hashing (Zhu et al., IJCAI 2017)
- :mod:`.idhn`: IDHN, improved deep hashing with soft pairwise similarity (Zhang et al., TMM 2020)
- :mod:`.csq`: CSQ, central similarity quantization (Yuan et al., CVPR 2020)
- :mod:`.dpn`: DPN, deep polarized network (Fan et al., IJCAI 2020)

Methods with an optimisation of their own live in modules of their own
(:mod:`neurohash_lite.dsdh`, ``adsh``, ``dihn``, ``daph``, ``dscmr``,
``pcdh``, ``fah``, ``dcpha_model``), the shallow ones in
:mod:`neurohash_lite.shallow` (CVH, SCM, SePH).
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
from neurohash_lite.losses.cmhh import CMHHLoss  # noqa: F401
from neurohash_lite.losses.dhn import DHNLoss  # noqa: F401
from neurohash_lite.losses.dpn import DPNLoss  # noqa: F401
from neurohash_lite.losses.dsh import DSHLoss  # noqa: F401
from neurohash_lite.losses.idhn import IDHNLoss  # noqa: F401
from neurohash_lite.losses.lcdsh import LCDSHLoss  # noqa: F401
from neurohash_lite.losses.pgdh import PGDHLoss  # noqa: F401

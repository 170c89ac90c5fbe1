"""The shallow cross-modal hashing methods of Tao & An's Table I: CVH, SePH, SCM.

Each learns linear (CVH, SCM) or kernel (SePH) hash functions on fixed
features, not a network, and each module has the comparison's entry point
``run(context, n_bits) -> MethodRun``:

- :mod:`.cvh`: Cross-View Hashing (Kumar & Udupa, 2011), unsupervised: CCA, then sign;
- :mod:`.seph`: Semantics-Preserving Hashing (Lin et al., 2015): codes whose
  Hamming affinities match the label affinities in KL divergence, then kernel
  logistic regression per modality;
- :mod:`.scm`: Semantic Correlation Maximization (Zhang & Li, 2014): projections
  that maximise the correlation with the label similarity, orthogonal or bit by bit;
- :mod:`.features`: what they read, the 90 regional means of each scan over
  AAL (the paper's input, the default) or the PCA of the flattened scans.
"""

from neurohash_lite.shallow import cvh, features, scm, seph  # noqa: F401

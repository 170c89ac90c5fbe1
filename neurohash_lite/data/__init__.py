"""Data: the synthetic sMRI/FDG-PET cohort, BIDS loading, preprocessing, splits, datasets.

The names chapters use:

- :func:`make_synthetic_cohort` (:mod:`.synthetic`): write a synthetic cohort
  made from nilearn's MNI152 templates, offline;
- :func:`load_cohort` (:mod:`.cohort`): read any BIDS-like folder into a
  :class:`Cohort` of 2D slice stacks or 3D volumes (cached on disk);
- :func:`load_tier_cohort`: both in one line, at a scale tier's sizes;
- :func:`make_splits`, :func:`assert_disjoint_subjects`,
  :func:`pretraining_indices` (:mod:`.splits`): subject-level splits;
- :class:`PairedDataset`, :class:`ImageDataset` (:mod:`.datasets`): torch datasets;
- :func:`linear_separability` (:mod:`.difficulty`): how hard a cohort is;
- :func:`roi_features` (:mod:`.roi`): mean of each scan over the 90 cerebral
  regions of AAL, the input of the shallow methods.
"""

from .bids import load_volume, read_participants, scan_layout
from .cohort import Cohort, load_cohort, load_tier_cohort, tier_cohort_root
from .datasets import ImageDataset, PairedDataset
from .difficulty import DifficultyResult, linear_separability
from .roi import roi_features
from .splits import Splits, assert_disjoint_subjects, make_splits, pretraining_indices
from .synthetic import DIAGNOSES, PRESETS, GenerativeModel, draw_subjects, make_synthetic_cohort

__all__ = [
    "DIAGNOSES",
    "PRESETS",
    "GenerativeModel",
    "draw_subjects",
    "make_synthetic_cohort",
    "Cohort",
    "load_cohort",
    "load_tier_cohort",
    "tier_cohort_root",
    "load_volume",
    "read_participants",
    "scan_layout",
    "Splits",
    "make_splits",
    "assert_disjoint_subjects",
    "pretraining_indices",
    "PairedDataset",
    "ImageDataset",
    "DifficultyResult",
    "linear_separability",
    "roi_features",
]

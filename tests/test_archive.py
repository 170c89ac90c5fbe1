"""The archive sampler keeps the real codes' per-class bit statistics."""

import numpy as np
import pytest

from neurohash_lite.archive import expected_bit_means, sample_archive


def fake_outputs(rng, n=120, n_bits=16):
    labels = rng.integers(0, 3, n)
    prototypes = rng.uniform(-1, 1, (3, n_bits))
    outputs = np.tanh(3 * (prototypes[labels] + 0.4 * rng.standard_normal((n, n_bits))))
    return outputs.astype(np.float32), labels


def test_per_class_bit_means_match_expectation_and_the_real_codes():
    rng = np.random.default_rng(0)
    outputs, labels = fake_outputs(rng)
    noise = 0.2
    archive = sample_archive(outputs, labels, 60_000, noise=noise, seed=1)
    expected = expected_bit_means(outputs, labels, noise)
    real_codes = np.where(outputs >= 0, 1, -1)
    for c, share in expected.items():
        sampled = (archive.codes[archive.labels == c] > 0).mean(axis=0)
        n_class = (archive.labels == c).sum()
        # Within 5 standard errors of the exact expectation (a Bernoulli mean's s.e. is at most 0.5/sqrt(n)).
        assert np.abs(sampled - share).max() < 5 * 0.5 / np.sqrt(n_class)
        # And within the largest flip probability Φ(-|u|/σ) (plus the same sampling error) of the real codes.
        real = (real_codes[labels == c] > 0).mean(axis=0)
        assert np.abs(sampled - real).max() < 0.25
    # Labels keep the cohort's class proportions.
    np.testing.assert_allclose(np.bincount(archive.labels) / len(archive),
                               np.bincount(labels) / len(labels), atol=0.01)
    np.testing.assert_array_equal(archive.labels, labels[archive.source])


def test_small_noise_copies_real_codes_and_outputs_match_codes():
    rng = np.random.default_rng(1)
    outputs, labels = fake_outputs(rng, n=50)
    outputs = np.where(np.abs(outputs) < 0.2, np.sign(outputs + 1e-9) * 0.2, outputs)   # no output near 0
    archive = sample_archive(outputs, labels, 5_000, noise=0.02, seed=2, return_outputs=True)
    np.testing.assert_array_equal(archive.codes, np.where(outputs[archive.source] >= 0, 1, -1))
    np.testing.assert_array_equal(archive.codes, np.where(archive.outputs >= 0, 1, -1))
    assert archive.codes.dtype == np.int8 and archive.outputs.dtype == np.float32
    again = sample_archive(outputs, labels, 5_000, noise=0.02, seed=2)
    np.testing.assert_array_equal(again.codes, archive.codes)   # determined by the seed


@pytest.mark.parametrize("kwargs, message", [
    ({"n": 0}, "n=0"),
    ({"noise": 0.0}, "noise"),
    ({"labels": np.zeros(3, int)}, "labels must have shape"),
    ({"outputs": np.full((4, 8), np.nan)}, "NaN"),
    ({"outputs": np.zeros((0, 8))}, "outputs must be"),
])
def test_bad_input(kwargs, message):
    rng = np.random.default_rng(2)
    outputs, labels = fake_outputs(rng, n=4, n_bits=8)
    arguments = {"outputs": outputs, "labels": labels, "n": 10, **kwargs}
    with pytest.raises(ValueError, match=message):
        sample_archive(**arguments)

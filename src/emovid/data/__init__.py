"""Data: RAVDESS names and index, video decoding, the clip cache, datasets, synthetic data."""

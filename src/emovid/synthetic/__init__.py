"""Synthetic RAVDESS-format videos: drawn faces that speak and show an emotion, for tests and the demo.

:func:`generate_dataset` writes a collection (folders or official-style zips) with its ground truth.
"""

from emovid.synthetic.generate import SynthConfig, generate_dataset, parse_actors, read_meta

__all__ = ["SynthConfig", "generate_dataset", "parse_actors", "read_meta"]

"""Synthetic RAVDESS-format videos: drawn faces that speak and show an emotion, for tests and the demo.

:func:`generate_dataset` writes a collection (folders or official-style zips) with its ground truth;
:class:`Scene` puts several people in one video (:func:`write_scene`), for tracking tests and benchmarks.
"""

from emovid.synthetic.generate import SynthConfig, generate_dataset, parse_actors, read_meta
from emovid.synthetic.scene import Person, Scene, write_scene

__all__ = ["Person", "Scene", "SynthConfig", "generate_dataset", "parse_actors", "read_meta", "write_scene"]

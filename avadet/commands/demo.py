"""``avadet demo``: the whole system on a synthetic dataset, on the CPU (no download)."""

from avadet.demo import add_arguments, run  # noqa: F401  (moves here with the demo package)

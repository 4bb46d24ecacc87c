"""``avadet demo``: the whole system on a synthetic dataset, on the CPU (no download)."""

from avadet.demo.run import add_arguments, run  # noqa: F401

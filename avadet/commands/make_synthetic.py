"""``avadet make-synthetic OUT``: generate a synthetic AVA-format dataset."""

from avadet.data.synthetic_cli import add_arguments, run  # noqa: F401  (moves here with the generator package)

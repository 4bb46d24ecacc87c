"""``avadet make-synthetic OUT``: generate a synthetic AVA-format dataset."""

from avadet.synthetic.cli import add_arguments, run  # noqa: F401

"""Flags that several commands share, and their translation into use-case arguments."""

from __future__ import annotations

import argparse
import contextlib
import logging
from typing import Iterator, Optional

PERSON_BACKENDS = ("torchvision", "detectron2", "csv")


CHECKPOINT_HELP = ("the model: an avadet checkpoint (.pt), a PySlowFast .pyth, a Caffe2 .pkl "
                   "(with --arch), a pytorchvideo state dict; its authors' preprocessing is used")
ARCH_HELP = ("the published architecture of a Caffe2 .pkl, which records none (slowfast_32x2_r50, "
             "slowfast_32x2_r101_50_50, slow_8x8_r50)")


def add_config_arguments(parser: argparse.ArgumentParser, *, required: bool = True,
                         help: str = "YAML config (e.g. configs/ava/*.yaml)") -> None:
    parser.add_argument("--config", required=required, help=help)
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="config overrides, e.g. data.root=/data/ava solver.base_lr=0.05")


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (default: torch's choice); more threads than "
                             "free cores slows the models down a lot")


def set_threads(threads: int) -> None:
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


def add_inference_arguments(parser: argparse.ArgumentParser) -> None:
    """``--no-deploy`` and ``--precision``: the action model's CPU inference path."""
    group = parser.add_argument_group("inference path (CPU)")
    group.add_argument("--no-deploy", action="store_true",
                       help="run the model as trained (eval mode) instead of its deployment "
                            "form (BatchNorm folded, channels-last: same scores within 1e-4, "
                            "faster); same as test.deploy=false")
    group.add_argument("--precision", choices=("fp32", "bf16"),
                       help="bf16: bfloat16 on a CPU with native bf16, faster but scores move "
                            "by ~5e-3 (docs/benchmarks.md); same as test.precision=bf16 "
                            "(default: the config's, fp32)")


def inference_overrides(args: argparse.Namespace) -> list[str]:
    """The ``test.*`` overrides that ``--no-deploy`` / ``--precision`` stand for."""
    extra = ["test.deploy=false"] if args.no_deploy else []
    if args.precision:
        extra.append(f"test.precision={args.precision}")
    return extra


def add_detector_arguments(parser: argparse.ArgumentParser, *,
                           default_threshold: Optional[float] = None) -> None:
    """The person-detector options of ``detect`` and ``detect-persons``."""
    group = parser.add_argument_group("person detector")
    group.add_argument("--persons", default="torchvision", choices=PERSON_BACKENDS,
                       help="person detector backend (default: %(default)s)")
    group.add_argument("--boxes", metavar="CSV", help="person-box CSV for --persons csv")
    group.add_argument("--person-threshold", type=float, default=default_threshold,
                       help="keep person boxes scoring at least this"
                            + (" (default: %(default)s)" if default_threshold is not None
                               else " (default: the config's data.test_detection_score)"))
    group.add_argument("--detector-weights", metavar="FILE",
                       help="local fasterrcnn_resnet50_fpn COCO state dict (offline use)")
    group.add_argument("--detector-min-size", type=int, default=800,
                       help="short side torchvision resizes frames to (default: %(default)s; "
                            "smaller is faster on a CPU)")
    group.add_argument("--detector-max-size", type=int, default=1333)
    group.add_argument("--d2-config", metavar="YAML", help="detectron2 config (--persons detectron2)")
    group.add_argument("--d2-weights", metavar="FILE", help="detectron2 weights")
    group.add_argument("--detector-batch", type=int, default=4, help="frames per detector pass")


def detector_choice(args: argparse.Namespace):
    """The person detector the flags choose (built later, once the threshold is known)."""
    from avadet.errors import AvadetError
    from avadet.persons import PersonDetectorChoice

    if args.persons == "csv" and not args.boxes:
        raise AvadetError("--persons csv needs --boxes FILE.csv (an AVA person-box CSV)")
    if args.persons == "detectron2":
        from avadet.persons.detectron2_backend import _import_detectron2

        _import_detectron2()  # the install hint comes before any complaint about arguments
        if not args.d2_config or not args.d2_weights:
            raise AvadetError("--persons detectron2 needs --d2-config CFG.yaml and --d2-weights FILE")
    return PersonDetectorChoice(
        args.persons, boxes_csv=args.boxes, weights_path=args.detector_weights,
        min_size=args.detector_min_size, max_size=args.detector_max_size,
        detectron2_config=args.d2_config, detectron2_weights=args.d2_weights,
        batch_size=args.detector_batch,
    )


@contextlib.contextmanager
def weights_hint() -> Iterator[None]:
    """Name the flags that fix a failed download of the person detector's weights."""
    from avadet.errors import WeightsUnavailable

    try:
        yield
    except WeightsUnavailable as exc:
        raise WeightsUnavailable(
            f"{exc} (--detector-weights FILE; or --persons csv --boxes FILE)") from None


def setup_console_logging(log_file: Optional[str] = None, *, timestamps: bool = True) -> None:
    """INFO messages on stderr (and in ``log_file``), for the long-running data steps."""
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_file:
        handlers.append(logging.FileHandler(log_file))
    fmt = "%(asctime)s %(levelname)s %(message)s" if timestamps else "%(message)s"
    logging.basicConfig(level=logging.INFO, format=fmt, handlers=handlers, force=True)

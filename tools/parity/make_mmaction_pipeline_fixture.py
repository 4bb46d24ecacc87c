"""Make tests/fixtures/data/mmaction_pipeline.npz with MMAction2's own AVA test pipeline.

Not part of avadet or its tests; run it like make_mmaction_fixtures.py (same scratch
environment, same stand-ins)::

    python tools/parity/make_mmaction_pipeline_fixture.py --mmaction2 /tmp/mmaction2 [--dump x.pt]

It writes 62 small JPEG frames of one video in MMAction2's layout (``<video>/img_%05d.jpg``,
1-based, 64x96), and runs MMAction2's ``SampleAVAFrames(clip_len=32, frame_interval=2,
test_mode=True)``, ``RawFrameDecode``, ``Resize(scale=(-1, 256))``, ``FormatShape('NCTHW',
collapse=True)`` and ``ActionDataPreprocessor`` (ImageNet mean/std) on keyframes 900 and 901,
with the dataset's fields as ``AVADataset`` fills them (fps 30, timestamp_start 900,
start_index 1, shot_info (0, 27000)) and normalised proposals scaled as ``RawFrameDecode``
and ``Resize`` scale them. The fixture keeps the JPEG bytes (so the test decodes the very
same files), the file numbers read, the resized uint8 frames at every 16th pixel, statistics
of the normalised input, and the proposals in input pixels. ``--dump`` also saves the full
normalised inputs for a max |diff| report.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_mmaction_fixtures import ROOT, _install_stand_ins  # noqa: E402

VIDEO = "vidA"
NUM_FRAMES = 62
KEYFRAMES = (900, 901)  # 900: the clip is clamped at the first frame
# Normalised x1 y1 x2 y2; the second touches the right and bottom edges.
PROPOSALS = np.array([[0.1, 0.2, 0.55, 0.9], [0.5, 0.15, 1.0, 1.0]], np.float32)
MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
STRIDE = 16


def _frames() -> list[bytes]:
    """Smooth moving gradients plus noise, so resizing and decoding both show."""
    rng = np.random.RandomState(3)
    ys, xs = np.mgrid[0:64, 0:96].astype(np.float32)
    out = []
    for k in range(NUM_FRAMES):
        r = 127 + 100 * np.sin((xs + 2 * k) / 9.0)
        g = 127 + 100 * np.cos((ys - k) / 7.0)
        b = (xs * 2 + ys + 3 * k) % 256
        image = np.stack([b, g, r], -1) + rng.normal(0, 4, (64, 96, 3))
        ok, data = cv2.imencode(".jpg", np.clip(image, 0, 255).astype(np.uint8),
                                [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        out.append(data.tobytes())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mmaction2", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "data")
    parser.add_argument("--dump", type=Path, default=None)
    args = parser.parse_args()
    mmaction2 = args.mmaction2.resolve()
    _install_stand_ins(mmaction2)
    import mmaction.structures.action_data_sample as action_data_sample
    import mmaction.utils.misc as misc

    for name in ("get_random_string", "get_shm_dir", "get_thread_id"):
        setattr(sys.modules["mmaction.utils"], name, getattr(misc, name))
    sys.modules["mmaction.structures"].ActionDataSample = action_data_sample.ActionDataSample
    sys.modules["mmaction.utils"].SampleList = list
    from mmaction.datasets.transforms.formatting import FormatShape
    from mmaction.datasets.transforms.loading import RawFrameDecode, SampleAVAFrames
    from mmaction.datasets.transforms.processing import Resize
    from mmaction.models.data_preprocessors.data_preprocessor import ActionDataPreprocessor

    jpegs = _frames()
    pipeline = [SampleAVAFrames(clip_len=32, frame_interval=2, test_mode=True),
                RawFrameDecode(io_backend="disk"), Resize(scale=(-1, 256)),
                FormatShape(input_format="NCTHW", collapse=True)]
    preprocessor = ActionDataPreprocessor(mean=MEAN, std=STD, format_shape="NCTHW")
    fixture: dict[str, np.ndarray] = {
        "jpeg_bytes": np.frombuffer(b"".join(jpegs), np.uint8),
        "jpeg_offsets": np.cumsum([0] + [len(j) for j in jpegs]).astype(np.int64),
        "keyframes": np.array(KEYFRAMES, np.int64),
        "proposals_normalised": PROPOSALS,
    }
    dump = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / VIDEO
        folder.mkdir()
        for k, data in enumerate(jpegs):
            (folder / f"img_{k + 1:05d}.jpg").write_bytes(data)
        for j, t in enumerate(KEYFRAMES):
            results = dict(frame_dir=str(folder), video_id=VIDEO, timestamp=t, timestamp_start=900,
                           timestamp_end=1800, fps=30, start_index=1, shot_info=(0, 27000),
                           filename_tmpl="img_{:05}.jpg", modality="RGB",
                           proposals=PROPOSALS.copy(), gt_bboxes=PROPOSALS[:1].copy())
            for step in pipeline:
                if isinstance(step, FormatShape):
                    resized = np.stack(results["imgs"])  # (T, H, W, 3) uint8 RGB
                results = step(results)
            inputs, _ = preprocessor.preprocess([torch.from_numpy(results["imgs"])], [], False)
            inputs = inputs[0]  # (3, T, H, W)
            fixture[f"frame_files_{j}"] = results["frame_inds"].astype(np.int64)
            fixture[f"resized_strided_{j}"] = resized[:, ::STRIDE, ::STRIDE]
            fixture[f"input_shape_{j}"] = np.array(inputs.shape, np.int64)
            fixture[f"input_mean_{j}"] = inputs.double().mean((1, 2, 3)).numpy()
            fixture[f"input_abs_max_{j}"] = np.array(inputs.abs().max().item())
            fixture[f"proposals_{j}"] = results["proposals"].astype(np.float32)
            dump[t] = {"inputs": inputs, "proposals": torch.from_numpy(results["proposals"])}
            print(t, results["frame_inds"].tolist(), tuple(inputs.shape), results["proposals"].tolist())
    args.out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out / "mmaction_pipeline.npz", **fixture)
    if args.dump is not None:
        torch.save(dump, args.dump)


if __name__ == "__main__":
    main()

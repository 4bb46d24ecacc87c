"""avadet: spatio-temporal action detection on AVA (SlowFast, RoI head, official frame-mAP)."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

setup(
    name="avadet",
    version="0.1.0",
    description="Spatio-temporal action detection on AVA: SlowFast models, training, "
    "official-protocol frame-mAP evaluation and detection on movie clips.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9",
    packages=find_packages(include=["avadet", "avadet.*"]),
    include_package_data=True,
    package_data={"avadet": ["configs/**/*.yaml", "assets/*"]},
    install_requires=[
        # Ranges admit the torch 2.14.1 / torchvision 0.29.1 builds served locally; never
        # require a newer torch than that.
        "torch>=2.1",
        "torchvision>=0.16",
        "numpy>=1.23",
        "pandas>=1.5",
        "pyyaml>=5.4",
        "tqdm>=4.60",
        "av>=10.0",
        "opencv-python-headless>=4.6",
        "pycocotools>=2.0.6",
        "matplotlib>=3.5",
    ],
    extras_require={
        # Reference implementations used only as test oracles, and the test runners.
        "test": [
            "pytest>=7",
            "pytest-xdist>=3",
            "hypothesis>=6.50",
            "pytorchvideo>=0.1.5",
            "fvcore>=0.1.5",
            "ruff>=0.4",
            # tests/models/test_export.py: ONNX Runtime reproduces the exported scores.
            "onnx>=1.14",
            "onnxruntime>=1.16",
        ],
        # avadet export (ONNX) and ONNX Runtime inference: wheels of 28 MB (onnxruntime 1.32)
        # and 9 MB (onnx 1.23), ~110 MB installed with protobuf, flatbuffers and ml_dtypes;
        # about 10 s to install from a warm pip cache.
        "export": ["onnx>=1.14", "onnxruntime>=1.16"],
        "tensorboard": ["tensorboard>=2.10"],
    },
    entry_points={"console_scripts": ["avadet=avadet.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)

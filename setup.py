"""stcnn: Karpathy et al. (CVPR 2014) video CNNs in JAX/Flax."""
from setuptools import find_packages, setup

setup(
    name="stcnn",
    version="0.1.0",
    description=("Large-scale video classification with CNNs (Karpathy et al., CVPR 2014): "
                 "single-frame, early, late and slow fusion, multiresolution, in JAX/Flax."),
    long_description=open("README.md").read(),
    long_description_content_type="text/markdown",
    # configs: the config files import `configs.common` (and a user's own config file may)
    packages=find_packages(include=["stcnn", "stcnn.*", "configs"]),
    package_data={"stcnn": ["data/sports1m_labels.txt", "data/SPORTS1M_LICENSE.txt"]},
    python_requires=">=3.10",
    install_requires=[
        "jax>=0.4.30",
        "flax>=0.8",
        "optax>=0.2",
        "orbax-checkpoint>=0.6",
        "grain>=0.2.2",
        "tensorflow-datasets>=4.9.6",
        "array-record>=0.5",
        "ml-collections>=0.1.1",
        "absl-py>=1.0",
        "av>=12",
        "numpy>=1.24",
        "scipy>=1.11",
        "pillow>=10",
        "tensorboardX>=2.6",
        "tqdm>=4.60",
        "matplotlib>=3.7",
        "rich>=12",
        "etils[epath]",
        "flatbuffers>=24.3",  # jax.export's serialisation (`python -m stcnn.export`)
    ],
    extras_require={
        # the export tests run the ONNX path too, so the test extra carries the export extra; the
        # Beam runner's tests need the beam extra
        "test": ["pytest>=7", "portpicker>=1.5", "ruff>=0.6", "jax2onnx>=0.12.5,<0.13",
                 "onnxruntime>=1.24", "apache-beam>=2.60"],
        # benchmarks/compare_torch.py only; never a runtime dependency
        "torch": ["torch>=2.1"],
        # `stcnn.export --format=onnx`; flatbuffers: jax.export's serialisation (StableHLO too).
        # jax2onnx >= 0.13 pins orbax-checkpoint < 0.11.37, a downgrade of this project's.
        "export": ["flatbuffers>=24.3", "jax2onnx>=0.12.5,<0.13", "onnxruntime>=1.24"],
        # `stcnn.data.prepare --runner=beam` (DirectRunner, Dataflow, Flink, Spark). For gs:// paths
        # add apache-beam[gcp] and gcsfs (etils.epath's GCS backend).
        "beam": ["apache-beam>=2.60"],
    },
    entry_points={"console_scripts": ["stcnn=stcnn.main:run"]},
)

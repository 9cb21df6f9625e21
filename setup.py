"""Install the `scaling` toolkit: `pip install -e .[test]`."""

from setuptools import find_packages, setup

# `scaling export` and scoring exported models with lm-evaluation-harness. torch's CPU
# build is enough (.ci/run installs it first, so this range takes nothing more).
HF = ["transformers>=5", "tokenizers>=0.21", "safetensors>=0.4", "torch>=2.4",
      "lm-eval[hf]>=0.4.8"]

setup(
    name="scaling",
    version="0.1.0",
    description="Train families of generative models across sizes, measure capabilities, fit scaling laws.",
    packages=find_packages(include=["scaling", "scaling.*"]),
    python_requires=">=3.11",
    install_requires=[
        "jax>=0.7",
        "flax>=0.12.3",
        "optax>=0.2.5",
        "orbax-checkpoint>=0.11.20",
        "tensorflow-datasets>=4.9.9",
        "array-record>=0.8",
        "grain>=0.2.12",
        "sentencepiece>=0.2",
        "ml-collections>=1.1",
        "matplotlib>=3.8",
        "tqdm>=4.66",
        "tensorboardX>=2.6",
        "scipy>=1.11",
        "scikit-learn>=1.3",  # ships the 8x8 digits image set
        "threadpoolctl>=3",  # one BLAS thread per fit: many tiny solves, no contention
        "numpy>=1.26",
        # JAX's own dtypes. 0.7.0 takes about 1 s to import (registering its NumPy ufunc
        # loops, measured with numpy 2.3 and 2.4; 0.6.0 takes 6 ms): a second of every
        # process, and sweeps and tests start many.
        "ml_dtypes>=0.5,<0.7",
        "importlib_resources>=6",  # tensorflow-datasets imports it without declaring it
    ],
    extras_require={
        "test": ["pytest>=8", "pytest-xdist>=3.6", "pytest-timeout>=2.3", *HF],
        "hf": HF,
        "cuda": ["jax[cuda12]>=0.7"],
        "tpu": ["jax[tpu]>=0.7"],
    },
    entry_points={"console_scripts": ["scaling=scaling.cli:main"]},
)

"""Shared pytest configuration."""

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SLURM_SCRIPT = Path(__file__).resolve().parent / "cluster" / "slurm.sh"

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of ../shared/data; skips the test when it is absent (a user's machine)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not present")
    return SHARED_DATA


@pytest.fixture
def one_faiss_thread() -> Iterator[None]:
    """faiss' OpenMP threads spin-wait; on a shared 2-core machine one thread is far faster."""
    import faiss

    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(previous)


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A one-node SLURM cluster (tests/cluster/slurm.sh) for the session; yields the environment
    for commands that submit to it (``SLURM_CONF`` set, one BLAS thread a job). Skips when SLURM
    is not installed or not root; in CI (``CI=true``, where .ci/run installs it) that fails."""
    folder = tmp_path_factory.mktemp("slurm")
    reason = None
    if os.geteuid() != 0:
        reason = "the test cluster runs slurmctld/slurmd as root"
    else:
        started = subprocess.run(
            ["bash", str(SLURM_SCRIPT), "start", str(folder)],
            capture_output=True,
            text=True,
            timeout=180,
        )
        if started.returncode != 0:
            reason = f"no SLURM cluster ({SLURM_SCRIPT} start): {started.stderr.strip()[-500:]}"
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    env = {
        **os.environ,
        "SLURM_CONF": str(folder / "slurm.conf"),
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PATH": f"{os.environ.get('PATH', '')}:/usr/sbin",
    }
    try:
        yield env
    finally:
        subprocess.run(["bash", str(SLURM_SCRIPT), "stop", str(folder)], timeout=120, check=False)

"""torch and torchvision that were not built for each other: the one paragraph that says so.

Each torchvision release is compiled against one torch release. Installed next to another torch
(``pip install torch`` alone upgrades torch and leaves torchvision), ``import torchvision`` fails
while registering its compiled operators, with ``RuntimeError: operator torchvision::nms does not
exist``, which says nothing about versions. :func:`find_version_mismatch` recognises that error;
:mod:`hashing.runs.errors` reports it as a user error naming both installed versions and the fix.
"""

from __future__ import annotations

import re
from importlib import metadata

#: what ``import torchvision`` raises when its compiled operators do not fit the installed torch
MISMATCH = re.compile(r"operator torchvision::\w+ does not exist")
#: torch 2.N pairs with torchvision 0.(N + 15) (torch 2.0 with torchvision 0.15)
TORCHVISION_MINOR_OFFSET = 15


def installed_version(package: str) -> str | None:
    """The installed distribution's version (None when it is not installed)."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def matching_torchvision(torch_version: str) -> str | None:
    """The torchvision release line built for ``torch_version`` (``2.14.1`` -> ``0.29``);
    None for a torch before 2.0, whose pairs followed no rule."""
    found = re.match(r"(\d+)\.(\d+)", torch_version)
    if found is None or int(found.group(1)) != 2:
        return None
    return f"0.{int(found.group(2)) + TORCHVISION_MINOR_OFFSET}"


def find_version_mismatch(error: BaseException) -> str | None:
    """The message for ``error`` when it is torchvision failing to load into this torch, else
    None."""
    found = MISMATCH.search(str(error)) if isinstance(error, RuntimeError) else None
    if found is None:
        return None
    torch_version = installed_version("torch") or "?"
    torchvision_version = installed_version("torchvision") or "?"
    release = torch_version.split("+", 1)[0]
    wanted = matching_torchvision(release)
    pair = f'"torch=={release}" "torchvision=={wanted}.*"' if wanted else "torch torchvision"
    built_for = f" (torch {release} needs torchvision {wanted}.x)" if wanted else ""
    return (
        f"torch {torch_version} and torchvision {torchvision_version} do not match: "
        f"torchvision's compiled operators did not load ({found.group(0)}). "
        f"Each torchvision release is built for one torch release{built_for}. Reinstall them as "
        f"a pair, from the index you installed torch from (CPU or CUDA build): "
        f"pip install --force-reinstall {pair}"
    )

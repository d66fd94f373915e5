"""What produced a report: date, Python, package versions, platform, git and DVC state, config."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import platform
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

#: Packages whose versions go into the provenance.
PROVENANCE_PACKAGES: tuple[str, ...] = (
    "numpy",
    "pandas",
    "scipy",
    "keras",
    "tensorflow",
    "torch",
    "nibabel",
    "matplotlib",
    "seaborn",
    "snakemake",
    "dvc",
    "brats-unet",
)


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _git(repo_dir: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", "-C", str(repo_dir), *args], capture_output=True,
                              text=True, timeout=20, check=True)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip()


def _dvc_md5s(lock: Path) -> str:
    """``stage  path  md5`` lines for every output and dependency hashed in a dvc.lock."""
    try:
        data = yaml.safe_load(lock.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        return f"unreadable dvc.lock: {error}"
    lines = []
    for stage, spec in sorted((data.get("stages") or {}).items()):
        for kind in ("deps", "outs"):
            for entry in (spec or {}).get(kind) or []:
                if isinstance(entry, dict) and "md5" in entry:
                    lines.append(f"{stage}  {kind[:-1]}  {entry.get('path', '?')}  {entry['md5']}")
    return "\n".join(lines) if lines else "dvc.lock has no md5s"


def collect_provenance(config: Mapping[str, Any], repo_dir: Path | None) -> dict[str, str]:
    """What produced this report: date, Python, packages, platform, git and DVC state, config.

    Git is asked only when ``repo_dir`` holds a ``.git``; failures read "unknown".
    """
    info: dict[str, str] = {
        "date (UTC)": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine() or "unknown",
    }
    info.update({f"version {p}": _version(p) for p in PROVENANCE_PACKAGES})
    if repo_dir is not None and (Path(repo_dir) / ".git").exists():
        info["git revision"] = _git(Path(repo_dir), "rev-parse", "HEAD")
        status = _git(Path(repo_dir), "status", "--porcelain")
        info["git tree"] = "unknown" if status == "unknown" else ("dirty" if status else "clean")
    else:
        info["git revision"] = "unknown (not a git checkout)"
    lock = Path(repo_dir) / "dvc.lock" if repo_dir is not None else None
    info["dvc.lock md5s"] = _dvc_md5s(lock) if lock is not None and lock.exists() else "no dvc.lock"
    info["config"] = yaml.safe_dump(dict(config), sort_keys=False, default_flow_style=False)
    return info

"""Checking the workflow's configuration against its JSON Schema (draft 2020-12)."""

from __future__ import annotations

import os
from typing import Any

import jsonschema
import yaml


def config_problems(config: dict[str, Any], schema_path: str | os.PathLike) -> list[str]:
    """One line per problem, ``key.path: what is wrong``; empty when the config is valid.

    jsonschema's own messages are kept, but without the schema dump Snakemake's
    ``validate`` prints, so a user sees the key and the mistake at once.
    """
    with open(schema_path) as handle:
        schema = yaml.safe_load(handle)
    validator = jsonschema.Draft202012Validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.path))):
        where = ".".join(str(p) for p in error.absolute_path) or "config"
        problems.append(f"{where}: {error.message}")
    if "label_convention" in config:
        problems.append(
            "label_convention: replaced by dataset (which also says how the files are named): "
            "set dataset: brats2020 or brats2021 for ET = 4, brats2023 for ET = 3 (BraTS 2023 "
            "and later), or auto. label_convention: brats2021 used to mean ET = 3, which was "
            "wrong: BraTS 2021 labels ET 4, as 2020 does")
    if isinstance(config.get("pretrained_dir"), str) and config["pretrained_dir"]:
        from brats_unet.training.weights import pretrained_dir_problem

        if problem := pretrained_dir_problem(config["pretrained_dir"]):
            problems.append(problem)
    return problems


def laid_over(base: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    """``more``'s keys replace ``base``'s, nested mappings key by key: how Snakemake lays a
    ``--configfile`` (a preset) over ``config/config.yaml``."""
    merged = dict(base)
    for key, value in more.items():
        both = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = laid_over(merged[key], value) if both else value
    return merged

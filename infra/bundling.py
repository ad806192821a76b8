"""The Lambda bundle, built WITHOUT Docker: pip downloads the manylinux aarch64 wheels for the Lambda
Python version into the asset, then the domain package, the handlers and migrations/ are copied in.

All functions share this one asset (one upload, one hash); each function picks its own handler.
The runtime dependencies come from pyproject.toml [project.dependencies], the single list.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

ROOT = Path(__file__).resolve().parents[1]
LAMBDA_PYTHON = "3.13"
RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64
# Lambda's limit for a function's unzipped code (the asset is uploaded through S3).
UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024
# Neither the bundle's pip nor our code needs these at run time (boto3 is pinned in the bundle on
# purpose: the media-pipelines KMS parameters need a recent one).
PRUNE = ("__pycache__", "*.dist-info/RECORD")


def runtime_requirements() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return list(project["dependencies"])


def build_bundle(output_dir: Path) -> None:
    """What the asset holds: site-packages for aarch64/CPython 3.13, then our code and migrations.

    Wheels come from PyPI, or only from the folder in VIDEOCALL_WHEELHOUSE when it is set (a fully
    offline bundle: fill it once with the same command as `pip download -d DIR ...`)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    wheelhouse = os.environ.get("VIDEOCALL_WHEELHOUSE")
    source = ["--no-index", "--find-links", wheelhouse] if wheelhouse else []
    subprocess.run(  # noqa: S603 - our own interpreter and fixed arguments
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--platform",
            "manylinux2014_aarch64",
            "--platform",
            "manylinux_2_28_aarch64",
            "--implementation",
            "cp",
            "--python-version",
            LAMBDA_PYTHON,
            "--only-binary=:all:",
            "--target",
            str(output_dir),
            "--upgrade",
            *source,
            *runtime_requirements(),
        ],
        check=True,
    )
    for package in ("videocall", "handlers"):
        shutil.copytree(
            ROOT / "functions" / package,
            output_dir / package,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    # The local stand-ins (server, emulators, dev tools) never ship: a deployed function cannot import them.
    shutil.rmtree(output_dir / "videocall" / "local", ignore_errors=True)
    shutil.copytree(ROOT / "migrations", output_dir / "migrations", dirs_exist_ok=True)
    for pycache in output_dir.rglob("__pycache__"):
        shutil.rmtree(pycache, ignore_errors=True)


def bundle_size(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


@jsii.implements(ILocalBundling)
class LocalPipBundling:
    def try_bundle(self, output_dir: str, *, image: DockerImage, **_: object) -> bool:
        build_bundle(Path(output_dir))
        return True


def function_code() -> lambda_.Code:
    """The shared asset. Its hash covers functions/, migrations/ and pyproject.toml only."""
    return lambda_.Code.from_asset(
        str(ROOT),
        asset_hash_type=AssetHashType.SOURCE,
        exclude=[
            "**",
            "!functions",
            "!functions/**",
            "!migrations",
            "!migrations/**",
            "!pyproject.toml",
            "**/__pycache__",
            "**/*.egg-info",
        ],
        bundling=BundlingOptions(
            # Only a fallback that is never used: local bundling always succeeds or raises.
            image=DockerImage.from_registry(f"public.ecr.aws/sam/build-python{LAMBDA_PYTHON}"),
            local=LocalPipBundling(),
        ),
    )

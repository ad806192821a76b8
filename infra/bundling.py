"""The Lambda bundle, built WITHOUT Docker: pip downloads the manylinux aarch64 wheels for the Lambda
Python version into the asset, then the domain package, the handlers and migrations/ are copied in.

All functions share this one asset (one upload, one hash); each function picks its own handler.
The runtime dependencies come from pyproject.toml [project.dependencies], the single list.

Bytecode: Lambda's /var/task is read-only, so a bundle without `__pycache__` compiles every module it
imports from source on every cold start, and caches nothing. Measured with benchmarks/cold_start.py
--no-bytecode: the join function's import takes 924 ms from source against 236 ms from bytecode. So
the bundle ships `.pyc` files compiled by a CPython of Lambda's version (unchecked-hash: the bundle
never changes under them, so Python does not stat and hash each source). The interpreter is
VIDEOCALL_LAMBDA_PYTHON, else `python3.13` on PATH, else a pyenv or uv install of 3.13; without one
the bundle still builds, source only, with a warning that says what it costs.
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
LAMBDA_ROOT = "/var/task"  # where Lambda unpacks the bundle: the path tracebacks show


def _version_of(interpreter: str) -> str | None:
    try:
        out = subprocess.run(  # noqa: S603 - a candidate interpreter, fixed arguments
            [interpreter, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    except OSError:
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def lambda_interpreter() -> str | None:
    """A CPython of Lambda's version (LAMBDA_PYTHON) on this machine, or None."""
    explicit = os.environ.get("VIDEOCALL_LAMBDA_PYTHON")
    if explicit:
        if _version_of(explicit) != LAMBDA_PYTHON:
            raise RuntimeError(f"VIDEOCALL_LAMBDA_PYTHON={explicit} is not a Python {LAMBDA_PYTHON}")
        return explicit
    candidates = [shutil.which(f"python{LAMBDA_PYTHON}")]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += [str(p) for p in sorted(pyenv_root.glob(f"versions/{LAMBDA_PYTHON}*/bin/python{LAMBDA_PYTHON}"))]
    uv = shutil.which("uv")
    if uv:
        found = subprocess.run([uv, "python", "find", LAMBDA_PYTHON], capture_output=True, text=True,  # noqa: S603
                               timeout=30, check=False)  # fmt: skip
        candidates.append(found.stdout.strip() if found.returncode == 0 else None)
    return next((c for c in candidates if c and _version_of(c) == LAMBDA_PYTHON), None)


def compile_bytecode(output_dir: Path) -> bool:
    """Compile the bundle for Lambda's Python; False (and a warning) when no such interpreter is here."""
    interpreter = lambda_interpreter()
    if interpreter is None:
        print(
            f"WARNING: no Python {LAMBDA_PYTHON} found (set VIDEOCALL_LAMBDA_PYTHON): the bundle ships without "
            "bytecode, and every cold start compiles its modules from source (about 4x the import time).",
            file=sys.stderr,
        )
        return False
    result = subprocess.run(  # noqa: S603 - Lambda's Python version and fixed arguments
        [interpreter, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
         "-s", str(output_dir), "-p", LAMBDA_ROOT, str(output_dir)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        # A package may carry files that are not Python 3.13 (templates, test data): they stay source.
        failed = [line for line in result.stdout.splitlines() if line.startswith("***")]
        print(f"WARNING: {len(failed)} files in the bundle did not compile: {failed[:5]}", file=sys.stderr)
    return True


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
        shutil.rmtree(pycache, ignore_errors=True)  # pip compiled for this interpreter, not Lambda's
    compile_bytecode(output_dir)


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

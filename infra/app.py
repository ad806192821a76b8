"""The CDK app: `cdk synth` / `cdk deploy -c stage=prod ...` (see README "Ops")."""

from __future__ import annotations

import sys
from pathlib import Path

# `cdk` runs this file directly: make the repository root and functions/ importable.
ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "functions"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from aws_cdk import App, Aspects, Environment  # noqa: E402
from cdk_nag import AwsSolutionsChecks, HIPAASecurityChecks  # noqa: E402

from infra.config import StageConfig  # noqa: E402
from infra.stack import VideoCallStack  # noqa: E402


def build(app: App) -> VideoCallStack:
    config = StageConfig.from_context(app.node)
    stack = VideoCallStack(
        app,
        f"VideoCall-{config.stage}",
        config=config,
        env=Environment(account=config.account, region=config.region),
        description=f"Telehealth video-call backend ({config.stage})",
    )
    Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    Aspects.of(app).add(HIPAASecurityChecks(verbose=True))
    return stack


if __name__ == "__main__":
    application = App()
    build(application)
    application.synth()

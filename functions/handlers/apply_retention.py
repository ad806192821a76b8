"""Scheduled daily: content past its retention deleted (every object version), legal holds respected."""

from videocall.jobs import apply_retention, lambda_entry

handler = lambda_entry(apply_retention)

"""Scheduled every minute: empty meetings ended, missed MeetingEnded caught, stuck recordings settled."""

from videocall.jobs import lambda_entry, reconcile

handler = lambda_entry(reconcile)

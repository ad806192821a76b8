"""Recordings: capture pipelines into the KMS-encrypted recordings bucket, their concatenation, the
artifacts they leave, download links, and the pipeline events that drive a recording's state."""

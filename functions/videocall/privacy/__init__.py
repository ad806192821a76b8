"""Privacy: retention, the right of access (export), erasure and legal holds, over every context's
appointment content (videocall.core.records)."""

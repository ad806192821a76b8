"""Feedback: the post-call quality survey (rating, what went wrong, a comment)."""

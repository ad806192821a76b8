"""Controls: what the clinician running a call decides. The waiting room (lobby, admit, deny),
moderation (remove a participant; audio, video and screen share allowed or not, enforced by Chime),
raised hands, and the participant list."""

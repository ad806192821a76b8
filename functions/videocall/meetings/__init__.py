"""Meetings: what exists. Sessions, attendees, the Chime meetings gateway and the meeting rules."""

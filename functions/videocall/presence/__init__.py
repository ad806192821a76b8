"""Presence: who is connected to which meeting, from Chime's attendee events; when a meeting emptied."""

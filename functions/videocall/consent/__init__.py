"""Consent: the patient's consent per appointment to recording, transcription and AI processing."""

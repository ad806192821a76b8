"""Transcripts: live transcription, the clinical record of each call (segments, medical entities, ICD-10 candidates)."""

"""The telehealth video-call domain: authentication, authorization, sessions, Chime."""

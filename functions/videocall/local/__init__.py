"""Local stand-ins (server, Chime emulator, dev tools): imported by nothing a deployed function runs."""

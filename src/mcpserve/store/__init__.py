"""State behind narrow async interfaces: sessions, resumable events, and the notification bus."""

"""framewire chat: a real-time chat app with uploads, history, presence and recovery.

Run it with ``framewire chat``. It is built on framewire's public API and framewire.http only,
so it also reads as an example of both: app.py (routes), hub.py (fan-out and replay),
store.py (the storage contract), sqlite_store.py and redis_store.py (its two implementations).
"""

"""Real-protocol fakes for tests (local servers on 127.0.0.1)."""

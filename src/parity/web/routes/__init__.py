"""One router per resource (FastAPI template layout): pages and ``/api/v1``."""

"""Model calls and what comes back: per-call settings and re-asking, failed replies, strict parsing, ratings."""

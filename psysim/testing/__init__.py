"""Test servers: a scripted and a fault-injecting OpenAI-compatible server on 127.0.0.1 (tests, benchmarks)."""

"""Inspect tasks, one per experiment or check (installed as ``psysim.tasks``; registered as ``psysim/<task>``)."""

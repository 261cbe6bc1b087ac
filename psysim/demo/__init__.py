"""A model-free demo: the ``psysim/demo`` model (scripted replies and ratings with a built-in
effect) and ``psysim-demo``, which runs both experiments on it and writes a report.
Its numbers are scripted: a demo of the pipeline, never a result."""

DEMO_PROVIDER = "psysim"
DEMO_MODEL = f"{DEMO_PROVIDER}/demo"


def is_demo_model(model: str) -> bool:
    """A model name served by the demo provider (``psysim/demo``)."""
    return str(model).split("/", 1)[0] == DEMO_PROVIDER

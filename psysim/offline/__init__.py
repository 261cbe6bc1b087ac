"""Run the harness on a real small LLM without a GPU: model from PyPI, llama.cpp server, Inspect."""

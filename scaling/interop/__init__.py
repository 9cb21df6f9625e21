"""Interoperability: runs written as Hugging Face models, and task files for peer harnesses."""

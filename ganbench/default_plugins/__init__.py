"""Built-in plugins: registered through the same plugin manager as installed distributions."""

"""The PySide6 desktop interface. Calls the core; never imports torch at module level."""

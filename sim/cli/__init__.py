"""Command-line interface: thin verbs over the library."""

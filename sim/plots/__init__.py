"""Plots for reports, drawn from stored results."""

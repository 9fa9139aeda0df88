"""Presentation: plots, report, demo pipeline and the command line."""

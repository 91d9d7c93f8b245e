"""Helpers shared by test packages (servers started for real, on free local ports)."""

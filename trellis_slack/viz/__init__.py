"""Visualizations: charts as PNGs and tables as Slack blocks."""

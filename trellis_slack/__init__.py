"""trellis-slack: the Trellis AI data analyst in Slack."""

__version__ = "0.1.0"

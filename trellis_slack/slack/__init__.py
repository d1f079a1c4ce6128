"""Talking to Slack: what its events mean, the messages we build, and the Web API shell."""

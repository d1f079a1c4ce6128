"""The state store: one record of every question, thread and post."""

"""Kafka plumbing: the topic registry and admin, group offsets, true log ends, whole-topic readers."""

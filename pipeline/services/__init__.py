"""Where Kafka and Redis are (external or embedded) and whether they answer."""

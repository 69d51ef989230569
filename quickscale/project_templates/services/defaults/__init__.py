"""The default services every project starts with (created by ``create_default_services``)."""

"""Thin aiokafka helpers: topic administration, reading a partition to its end, client factories."""

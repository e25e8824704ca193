"""Stations, areas (圏域) and districts (地区), loaded from one geography file."""

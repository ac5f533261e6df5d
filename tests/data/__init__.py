"""Tests of rmlc.data."""

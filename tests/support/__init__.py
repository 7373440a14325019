"""Helpers shared by the test directories: real local servers, factories, fakes."""

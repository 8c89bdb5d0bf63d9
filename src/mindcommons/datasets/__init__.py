"""Loaders for public research datasets, read from a local path the user gives.

Nothing here downloads, and no dataset text ships with mindcommons. Each loader module
documents its dataset's licence (several are research-only / non-commercial) and names
the file, record and field of anything it cannot read.
"""

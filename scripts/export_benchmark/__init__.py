"""Parts of ``scripts/benchmark_exports.py``: sample export writers and the measured child process.

``sample_tables`` writes the CSV and XLSX exports, ``sample_documents`` the JPK_MAG and EDI++
files, ``formats`` lists the formats with their writers, and ``measure`` is the child process
that parses one file and prints its figures.
"""

"""Shared machinery of the adapters that read exports of other programs (ERP, spreadsheets).

``adapter`` (the ``ExportAdapter`` base and ``ExportSettings``), ``sources`` and ``watched_file``
(which file is current, and when it is complete), ``tables`` and ``columns`` (CSV and XLSX rows and
their mapped columns), ``text_files`` and ``polish_csv`` (encodings and the Polish CSV dialect).
"""

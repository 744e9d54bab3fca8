"""Evaluation harness: image sets, laundering, metrics, fusion training and reports.

Nothing here runs at import; the command line lives in :mod:`sleuth.evaluation.cli`.
"""

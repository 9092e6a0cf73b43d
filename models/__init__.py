"""The vocabulary of the product: pydantic types and the pure rules that compute on them.

Nothing in this package does I/O, reads a clock or draws random numbers, so workflows and
activities can both call it and tests call it as plain functions.
"""

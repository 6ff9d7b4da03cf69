"""Screening service: informed consent and eligibility of trial subjects."""

"""Readers for public aggregates (Statistics Denmark StatBank, STAR Jobindsats)."""

from evaluering.public.labels import kommune_kode_for_label
from evaluering.public.statbank import read_statbank
from evaluering.public.jobindsats import read_jobindsats

__all__ = ["read_statbank", "read_jobindsats", "kommune_kode_for_label"]

"""Randomization service: concealed, stratified allocation of consented, eligible subjects to FG_HT or HT."""
